//! Every string the hosted pages show, in one place (English). A translation is another
//! `Text` value.

/// The words of the hosted pages.
#[derive(Debug)]
pub struct Text {
    pub product: &'static str,
    pub sign_in_title: &'static str,
    pub sign_in_to: &'static str,
    pub email: &'static str,
    pub password: &'static str,
    pub sign_in: &'static str,
    pub bad_credentials: &'static str,
    pub consent_title: &'static str,
    pub consent_intro: &'static str,
    pub consent_allow: &'static str,
    pub consent_deny: &'static str,
    pub consent_signed_in_as: &'static str,
    pub tenant_title: &'static str,
    pub tenant_intro: &'static str,
    pub tenant_continue: &'static str,
    pub error_title: &'static str,
    pub error_reference: &'static str,
    pub signed_out_title: &'static str,
    pub signed_out_body: &'static str,
    pub logout_title: &'static str,
    pub logout_body: &'static str,
    pub logout_confirm: &'static str,
    pub continue_label: &'static str,
    pub form_post_body: &'static str,
    pub signed_in_title: &'static str,
    pub signed_in_body: &'static str,
    pub sign_out: &'static str,
}

/// English.
pub static EN: Text = Text {
    product: "LaventeCare",
    sign_in_title: "Sign in",
    sign_in_to: "to continue to",
    email: "Email address",
    password: "Password",
    sign_in: "Sign in",
    bad_credentials: "The email address or password is incorrect.",
    consent_title: "Allow access?",
    consent_intro: "wants to:",
    consent_allow: "Allow",
    consent_deny: "Deny",
    consent_signed_in_as: "Signed in as",
    tenant_title: "Choose an organisation",
    tenant_intro: "You belong to more than one organisation. Which one do you want to use with",
    tenant_continue: "Continue",
    error_title: "Something went wrong",
    error_reference: "Reference",
    signed_out_title: "You are signed out",
    signed_out_body: "You can close this window.",
    logout_title: "Sign out?",
    logout_body: "Do you want to sign out of LaventeCare?",
    logout_confirm: "Sign out",
    continue_label: "Continue",
    form_post_body: "Returning you to the application…",
    signed_in_title: "You are signed in",
    signed_in_body: "Return to the application you came from.",
    sign_out: "Sign out",
};

/// What a scope lets the application do, in the user's words.
pub fn scope_description(scope: &str) -> Option<&'static str> {
    match scope {
        "openid" => Some("Know who you are"),
        "profile" => Some("See your name"),
        "email" => Some("See your email address"),
        "offline_access" => Some("Stay connected when you are not using it"),
        _ => None,
    }
}
