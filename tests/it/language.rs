//! Dutch and English pages (issue #14, item 4): the catalogues are complete translations of
//! each other, the language is chosen by `ui_locales`, then the user's `locale`, then
//! `Accept-Language`, then English, dates are written per language, and Chromium that prefers
//! Dutch gets the login, second-factor and consent pages in Dutch.

use chrono::TimeZone as _;
use laventecare_auth::html::text::{ADMIN, ADMIN_NL, EN, Lang, NL};

use crate::chrome::Chrome;
use crate::flow::{Browser, PASSWORD, Provider, Step, authorize_url, pkce};

/// `(key, value)` of every entry of a table, read off its `Debug` form (one field per line).
fn entries(t: &impl std::fmt::Debug) -> Vec<(String, String)> {
    format!("{t:#?}")
        .lines()
        .filter_map(|line| {
            let (key, value) = line.trim().split_once(": ")?;
            let value = value.strip_suffix(',')?.strip_prefix('"')?.strip_suffix('"')?;
            Some((key.to_owned(), value.to_owned()))
        })
        .collect()
}

/// Every key has a value in both languages, and every Dutch value is Dutch: only words that
/// are the same in both (the product's name, "Code", "Account") may equal the English.
#[test]
fn the_catalogues_are_complete_translations() {
    let (en, nl) = (entries(&EN), entries(&NL));
    assert!(en.len() > 100, "every field read: {}", en.len());
    let keys = |t: &[(String, String)]| t.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&en), keys(&nl), "the same keys in the same order");
    let same_in_both = ["product", "mfa_code", "device_code_label", "mail_account"];
    for ((key, english), (_, dutch)) in en.iter().zip(&nl) {
        assert!(!dutch.trim().is_empty() && !english.trim().is_empty(), "{key} is empty");
        if key == "lang" {
            continue;
        }
        assert_eq!(english == dutch, same_in_both.contains(&key.as_str()), "{key}: {english:?} / {dutch:?}");
        // A value that ends in a colon is followed by a value on the page, in both languages.
        assert_eq!(english.ends_with(':'), dutch.ends_with(':'), "{key}: {english:?} / {dutch:?}");
    }
    assert_eq!((EN.lang, NL.lang), ("en", "nl"));
    for lang in Lang::ALL {
        assert_eq!(lang.text().lang, lang.tag());
    }
}

/// The admin pages' words too: the same keys, and every Dutch value Dutch but for words the
/// two languages share (names of things: "Platform", "Clients", "Grants", "Slug", "Status").
#[test]
fn the_admin_catalogues_are_complete_translations() {
    let (en, nl) = (entries(&ADMIN), entries(&ADMIN_NL));
    assert!(en.len() > 100, "every field read: {}", en.len());
    let keys = |t: &[(String, String)]| t.iter().map(|(k, _)| k.clone()).collect::<Vec<_>>();
    assert_eq!(keys(&en), keys(&nl), "the same keys in the same order");
    let same_in_both = [
        "platform_title",
        "nav_clients",
        "col_grants",
        "col_client",
        "col_slug",
        "col_status",
        "clients_title",
        "client_grants",
    ];
    for ((key, english), (_, dutch)) in en.iter().zip(&nl) {
        assert!(!dutch.trim().is_empty(), "{key} is empty");
        assert_eq!(english == dutch, same_in_both.contains(&key.as_str()), "{key}: {english:?} / {dutch:?}");
        assert_eq!(english.ends_with(':'), dutch.ends_with(':'), "{key}: {english:?} / {dutch:?}");
    }
    for lang in Lang::ALL {
        assert!(std::ptr::eq(lang.admin(), if lang == Lang::Nl { &ADMIN_NL } else { &ADMIN }));
    }
}

#[test]
fn tags_ui_locales_and_accept_language_choose_a_language() {
    assert_eq!(Lang::from_tag("nl-BE"), Some(Lang::Nl));
    assert_eq!(Lang::from_tag("EN_gb"), Some(Lang::En));
    assert_eq!(Lang::from_tag("fr"), None);
    assert_eq!(Lang::from_tag(""), None);
    assert_eq!(Lang::from_ui_locales("fr-CA nl en"), Some(Lang::Nl));
    assert_eq!(Lang::from_ui_locales("de fr"), None);
    let accept = |h: &str| Lang::from_accept_language(h);
    assert_eq!(accept("nl-NL,nl;q=0.9,en-US;q=0.8,en;q=0.7"), Some(Lang::Nl));
    assert_eq!(accept("en-US,en;q=0.9,nl;q=0.8"), Some(Lang::En));
    assert_eq!(accept("fr-FR, en;q=0.4, nl;q=0.5"), Some(Lang::Nl), "highest q first, whatever the order");
    assert_eq!(accept("nl;q=0, en;q=0.1"), Some(Lang::En), "q=0 is a refusal");
    assert_eq!(accept("nl;q=0"), None);
    assert_eq!(accept("*"), None);
    assert_eq!(accept("nl;q=abc"), None, "a malformed weight is not a choice");
    assert_eq!(accept("nl;Q=0, en"), Some(Lang::En), "the weight's name is case-insensitive");
    assert_eq!(accept(&"x;q=1,".repeat(10_000)), None, "a huge header is bounded work");
}

#[test]
fn dates_are_written_per_language() {
    let at = chrono::Utc.with_ymd_and_hms(2026, 3, 5, 14, 7, 0).unwrap();
    assert_eq!(Lang::En.datetime(at), "5 Mar 2026, 14:07 UTC");
    assert_eq!(Lang::Nl.datetime(at), "5 mrt 2026 14:07 UTC");
}

/// The `<html lang>` of a page.
fn page_lang(step: &Step) -> String {
    crate::flow::between(step.html(), "<html lang=\"", "\"")
}

/// A browser with an `Accept-Language`.
fn speaking(p: &Provider, accept: &str) -> Browser {
    Browser::with_headers(p, &[("accept-language", accept)])
}

#[tokio::test]
async fn accept_language_then_ui_locales_then_the_users_locale() {
    let p = Provider::start().await;
    let discovery: serde_json::Value =
        p.http().get(p.url("/.well-known/openid-configuration")).send().await.unwrap().json().await.unwrap();
    assert_eq!(discovery["ui_locales_supported"], serde_json::json!(["en", "nl"]));

    // Accept-Language alone.
    let (_, challenge) = pkce();
    let dutch = speaking(&p, "nl-NL,nl;q=0.9,en;q=0.5").open(&authorize_url(&p, &challenge, &[])).await;
    assert_eq!(page_lang(&dutch), "nl");
    assert!(dutch.html().contains("<h1>Inloggen</h1>") && dutch.html().contains("Wachtwoord"), "{}", dutch.html());
    let english = speaking(&p, "en-GB").open(&authorize_url(&p, &challenge, &[])).await;
    assert_eq!(page_lang(&english), "en");
    assert!(english.html().contains("<h1>Sign in</h1>"));
    let neither = Browser::new(&p).open(&authorize_url(&p, &challenge, &[])).await;
    assert_eq!(page_lang(&neither), "en", "English by default");

    // ui_locales beats the browser, on every page of its flow; a request without it goes back
    // to the browser's language.
    let b = speaking(&p, "en-US");
    let login = b.open(&authorize_url(&p, &challenge, &[("ui_locales", "fr nl-BE")])).await;
    assert_eq!(page_lang(&login), "nl");
    let consent = b.login(&login, &p.email, PASSWORD).await;
    assert_eq!(page_lang(&consent), "nl");
    assert!(consent.html().contains("Toegang geven?") && consent.html().contains("Weten wie je bent"));
    let again = b.open(&authorize_url(&p, &challenge, &[("prompt", "login")])).await;
    assert_eq!(page_lang(&again), "en");

    // The user's own locale, once they are known: the consent page after the password.
    let mut db = p.t.owner().await;
    sqlx::query("UPDATE users SET locale = 'nl-NL' WHERE email = $1").bind(&p.email).execute(&mut db).await.unwrap();
    let b = speaking(&p, "en-US");
    let login = b.open(&authorize_url(&p, &challenge, &[])).await;
    assert_eq!(page_lang(&login), "en", "not known yet");
    let consent = b.login(&login, &p.email, PASSWORD).await;
    assert_eq!(page_lang(&consent), "nl", "{}", consent.html());
    // … unless the request asks for a language.
    let b = speaking(&p, "nl");
    let login = b.open(&authorize_url(&p, &challenge, &[("ui_locales", "en")])).await;
    let consent = b.login(&login, &p.email, PASSWORD).await;
    assert_eq!((page_lang(&login), page_lang(&consent)), ("en".into(), "en".into()));
    // Once that request is answered, the user's own language is back.
    assert!(matches!(b.consent(&consent, true).await, Step::Left(_)));
    assert_eq!(page_lang(&b.open(&p.url("/account")).await), "nl");

    // The account page speaks the user's language, dates too, and follows a change at once.
    let b = speaking(&p, "en-US");
    let login = b.open(&p.url("/account")).await;
    let account = b.login(&login, &p.email, PASSWORD).await;
    assert_eq!(page_lang(&account), "nl");
    let today = Lang::Nl.datetime(chrono::Utc::now());
    let month = today.split(' ').nth(1).unwrap();
    assert!(account.html().contains(&format!(" {month} ")), "a Dutch date ({today}): {}", account.html());
    let csrf = crate::flow::hidden(account.html(), "csrf");
    let saved = b.post("/account/profile", &[("csrf", csrf.as_str()), ("locale", "en-GB")]).await;
    assert_eq!(page_lang(&saved), "en", "{}", saved.html());
    assert!(saved.html().contains(EN.account_profile_saved));
}

/// Chromium that prefers Dutch: the login, second-factor and consent pages are Dutch, and the
/// sign-in completes.
#[tokio::test]
async fn chromium_in_dutch_signs_in_with_a_second_factor() {
    let p = Provider::start().await;
    let (_browser, secret, _codes) = crate::mfa::enrolled(&p, &p.email, PASSWORD).await;
    let (callback, seen) = crate::browser::relying_party().await;
    let client = p
        .client(laventecare_auth::clients::ClientRequest {
            name: "Browser App".into(),
            grants: vec!["authorization_code".into()],
            redirect_uris: vec![callback.clone()],
            ..Default::default()
        })
        .await;
    let (_, challenge) = pkce();
    let mut url = url::Url::parse(&p.url("/authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &client.client_id)
        .append_pair("redirect_uri", &callback)
        .append_pair("scope", "openid email")
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256");
    let url = url.to_string();

    let chrome = Chrome::start_speaking("nl,en").await;
    chrome.c().goto(&url).await.unwrap();
    chrome.wait_for_title("Inloggen · LaventeCare").await;
    let html = chrome.source().await;
    assert!(html.contains("lang=\"nl\"") && html.contains("E-mailadres") && html.contains("Wachtwoord"), "{html}");
    chrome.wait_for("input#email").await.send_keys(&p.email).await.unwrap();
    chrome.wait_for("input#password").await.send_keys(PASSWORD).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();

    chrome.wait_for_title("Verificatie in twee stappen · LaventeCare").await;
    let html = chrome.source().await;
    assert!(html.contains("Vul de code van 6 cijfers") && html.contains("Controleren"), "{html}");
    // The enrolment used this step's code; the next step's is accepted (one step of skew).
    chrome.wait_for("input#code").await.send_keys(&crate::flow::totp_code(&secret, 1)).await.unwrap();
    chrome.wait_for("button[type=submit]").await.click().await.unwrap();

    chrome.wait_for_title("Toegang geven? · LaventeCare").await;
    let html = chrome.source().await;
    assert!(html.contains("Toestaan") && html.contains("Weigeren") && html.contains("Weten wie je bent"), "{html}");
    chrome.wait_for("button[value=allow]").await.click().await.unwrap();
    chrome.wait_for("#done").await;
    chrome.close().await;
    let query = seen.lock().unwrap().clone().unwrap();
    assert!(query.contains("code="), "{query}");
}

/// An administrator whose profile says Dutch gets the admin pages in Dutch: the frame, the
/// members page with its forms, a refusal, and the notice after a form.
#[tokio::test]
async fn the_admin_pages_follow_the_users_language() {
    use laventecare_auth::vocabulary::Role;
    let p = Provider::start().await;
    let email = "beheerder@example.com";
    let hasher = laventecare_auth::identity::PasswordHasher::new();
    laventecare_auth::identity::create_user(&p.t.db, &hasher, email, PASSWORD).await.unwrap();
    laventecare_auth::tenancy::add_member(&p.t.db, "acme", email, Role::Admin).await.unwrap();
    let mut db = p.t.owner().await;
    sqlx::query("UPDATE users SET locale = 'nl-NL' WHERE email = $1").bind(email).execute(&mut db).await.unwrap();
    let admin = crate::mfa::enrolled(&p, email, PASSWORD).await.0;

    let page = admin.open(&p.url("/admin/t/acme/members")).await;
    assert_eq!(page.status(), 200);
    assert_eq!(page_lang(&page), "nl");
    for words in [ADMIN_NL.members_title, ADMIN_NL.nav_audit, ADMIN_NL.invite_member, ADMIN_NL.add_member] {
        assert!(page.html().contains(words), "{words:?} in {}", page.html());
    }
    assert!(!page.html().contains(ADMIN.invite_member_hint));
    let csrf = crate::flow::hidden(page.html(), "csrf");
    let done = admin
        .post("/admin/t/acme/invitations", &[("csrf", &csrf), ("email", "nieuw@example.com"), ("role", "viewer")])
        .await;
    assert!(done.html().contains(ADMIN_NL.invitation_sent), "{}", done.html());
    let refused =
        admin.post("/admin/t/acme/invitations", &[("csrf", &csrf), ("email", "geen adres"), ("role", "viewer")]).await;
    assert_eq!(refused.status(), 400);
    assert!(refused.html().contains(ADMIN_NL.invalid_title), "{}", refused.html());
    let index = admin.open(&p.url("/admin")).await;
    assert!(index.html().contains(ADMIN_NL.index_intro), "{}", index.html());
}

/// The error pages speak the page's language too: the browser's `Accept-Language` for a
/// visitor, the session's language for a signed-in user (whatever the header says); and the
/// form post page of a `ui_locales=nl` request is Dutch; so are the password rules' words.
#[tokio::test]
async fn error_pages_and_the_form_post_page_follow_the_language() {
    let p = Provider::start().await;
    // A visitor whose browser prefers Dutch posts a form with a stale token.
    let dutch = speaking(&p, "nl-NL,nl;q=0.9");
    dutch.open(&p.url("/forgot")).await;
    let expired = dutch.post("/forgot", &[("csrf", "stale"), ("email", "x@example.com")]).await;
    assert_eq!(expired.status(), 403);
    assert_eq!(page_lang(&expired), "nl");
    assert!(expired.html().contains(NL.error_form_expired_title), "{}", expired.html());
    assert!(expired.html().contains(NL.error_reference));
    // An English browser gets English.
    let english = speaking(&p, "en");
    english.open(&p.url("/forgot")).await;
    let expired = english.post("/forgot", &[("csrf", "stale"), ("email", "x@example.com")]).await;
    assert!(expired.html().contains(EN.error_form_expired_title), "{}", expired.html());
    // A signed-in user whose profile says Dutch, in an English browser: Dutch.
    let mut db = p.t.owner().await;
    sqlx::query("UPDATE users SET locale = 'nl' WHERE email = $1").bind(&p.email).execute(&mut db).await.unwrap();
    let b = speaking(&p, "en");
    let login = b.open(&p.url("/account")).await;
    b.login(&login, &p.email, PASSWORD).await;
    let expired = b.post("/account/password", &[("csrf", "stale"), ("current", "x"), ("new", "y")]).await;
    assert_eq!(page_lang(&expired), "nl", "{}", expired.html());
    assert!(expired.html().contains(NL.error_form_expired_body), "{}", expired.html());
    // The password rules speak it too.
    let account = b.open(&p.url("/account")).await;
    let csrf = crate::flow::hidden(account.html(), "csrf");
    let refused = b.post("/account/password", &[("csrf", csrf.as_str()), ("current", PASSWORD), ("new", "kort")]).await;
    assert!(refused.html().contains("Het wachtwoord moet minstens 12 tekens hebben."), "{}", refused.html());

    // A form post answer in the language the request asked for.
    let b = speaking(&p, "en");
    let (_, challenge) = pkce();
    let url =
        authorize_url(&p, &challenge, &[("response_mode", "form_post"), ("ui_locales", "nl"), ("prompt", "none")]);
    let page = b.open(&url).await;
    assert!(page.html().contains("id=\"response\""), "{}", page.html());
    assert!(page.html().contains(NL.form_post_body), "{}", page.html());
    assert_eq!(page_lang(&page), "nl");
    // Without `ui_locales`, a Dutch browser's.
    let b = speaking(&p, "nl");
    let url = authorize_url(&p, &challenge, &[("response_mode", "form_post"), ("prompt", "none")]);
    let page = b.open(&url).await;
    assert!(page.html().contains(NL.form_post_body), "{}", page.html());
}
