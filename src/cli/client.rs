//! `client`: register, update, rotate a secret, delete.

use clap::{Args, Subcommand};

use super::output::print;
use crate::clients;
use crate::db::Database;
use crate::db::audit::Actor;
use crate::vocabulary::Role;

#[derive(Subcommand, Debug)]
pub enum ClientCommand {
    /// Register a client. A confidential client's secret is printed once; only its hash is kept.
    Create(CreateClient),
    /// Change a client's name, redirect URIs or refresh grace window; each list given replaces
    /// the registered one.
    Update {
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// Seconds within which the refresh token just used may be presented again and return
        /// the same successor pair (0 turns it off; at most 300).
        #[arg(long)]
        refresh_grace_secs: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Give a confidential client a new secret (printed once); the old one stops working.
    RotateSecret {
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Delete a client and end every token it was issued.
    Delete {
        #[arg(long)]
        client_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Issue an initial access token for dynamic client registration (RFC 7591) in a tenant:
    /// `POST /register` with it as a Bearer token registers a client there. Printed once.
    RegistrationToken {
        #[arg(long)]
        tenant: String,
        /// How many registrations it allows.
        #[arg(long, default_value_t = 1)]
        uses: u32,
        /// How long it lives, in seconds (60 to 2592000).
        #[arg(long, default_value_t = 86400)]
        expires_in: i64,
        #[arg(long)]
        json: bool,
    },
}

/// What `client create` takes: a registration request, and whether to print JSON.
#[derive(Args, Debug)]
pub struct CreateClient {
    #[arg(long)]
    tenant: String,
    #[arg(long)]
    name: String,
    /// authorization_code, refresh_token, client_credentials or device_code.
    #[arg(long = "grant", num_args = 1.., required = true)]
    grants: Vec<String>,
    /// A public client (no secret; PKCE required).
    #[arg(long)]
    public: bool,
    #[arg(long = "redirect-uri")]
    redirect_uris: Vec<String>,
    #[arg(long = "post-logout-redirect-uri")]
    post_logout_redirect_uris: Vec<String>,
    /// The service account's role (client_credentials).
    #[arg(long, value_parser = ["admin", "editor", "viewer"])]
    role: Option<String>,
    /// Let users choose among their tenants at login.
    #[arg(long)]
    multi_tenant: bool,
    /// Every login through this client needs a second factor.
    #[arg(long)]
    require_mfa: bool,
    /// Its authorization requests must be pushed to /par first (RFC 9126 §6).
    #[arg(long)]
    require_par: bool,
    /// Where logout tokens are POSTed when a user's session with the client ends (OpenID
    /// Connect Back-Channel Logout 1.0): https, or http on a loopback address.
    #[arg(long)]
    backchannel_logout_uri: Option<String>,
    /// May ask for the `admin` scope: tokens for the admin API (`/api/v1/`).
    #[arg(long)]
    admin_api: bool,
    /// A confidential client may leave PKCE out (for relying parties that do not send it, such
    /// as the OpenID conformance suite); public clients always need it
    #[arg(long)]
    pkce_optional: bool,
    /// Seconds within which the refresh token just used may be presented again and return the
    /// same successor pair, for devices that lose a reply (default 0: none; 30-120 suits
    /// devices; at most 300)
    #[arg(long, default_value_t = 0)]
    refresh_grace_secs: u32,
    #[arg(long, value_parser = ["RS256", "ES256", "EdDSA"])]
    signing_alg: Option<String>,
    /// client_secret_basic (default) or client_secret_post.
    #[arg(long, value_parser = ["client_secret_basic", "client_secret_post"])]
    auth_method: Option<String>,
    #[arg(long)]
    json: bool,
}

impl CreateClient {
    /// The registration request these arguments make (the role as a [`Role`]).
    fn request(self) -> anyhow::Result<clients::ClientRequest> {
        Ok(clients::ClientRequest {
            tenant: self.tenant,
            name: self.name,
            grants: self.grants,
            public: self.public,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            role: self.role.map(|r| r.parse::<Role>()).transpose()?,
            multi_tenant: self.multi_tenant,
            require_mfa: self.require_mfa,
            require_par: self.require_par,
            backchannel_logout_uri: self.backchannel_logout_uri,
            admin_api: self.admin_api,
            pkce_optional: self.pkce_optional,
            refresh_grace_secs: self.refresh_grace_secs,
            signing_alg: self.signing_alg,
            auth_method: self.auth_method,
        })
    }
}

/// Runs one `client` subcommand as `operator` and prints its result (a new secret only once).
pub(super) async fn run(command: ClientCommand, db: &Database, operator: &Actor) -> anyhow::Result<()> {
    match command {
        ClientCommand::Create(args) => {
            let json = args.json;
            let created = clients::create_client_by(db, operator, args.request()?).await?;
            print(json, &created, || match &created.client_secret {
                Some(secret) => format!(
                    "client_id:     {}\nclient_secret: {}\n(the secret is shown only now)",
                    created.client_id,
                    secret.expose()
                ),
                None => format!("client_id: {} (public client)", created.client_id),
            })?;
        }
        ClientCommand::Update {
            client_id,
            name,
            redirect_uris,
            post_logout_redirect_uris,
            refresh_grace_secs,
            json,
        } => {
            let update = clients::change::ClientUpdate {
                client_id,
                name,
                redirect_uris: (!redirect_uris.is_empty()).then_some(redirect_uris),
                post_logout_redirect_uris: (!post_logout_redirect_uris.is_empty()).then_some(post_logout_redirect_uris),
                refresh_grace_secs,
            };
            let updated = clients::change::update_client(db, operator, update).await?;
            print(json, &updated, || {
                format!("updated {} of client {}", updated.changed.join(", "), updated.client_id)
            })?;
        }
        ClientCommand::RotateSecret { client_id, json } => {
            let rotated = clients::change::rotate_secret(db, operator, &client_id).await?;
            print(json, &rotated, || {
                format!(
                    "client_id:     {}\nclient_secret: {}\n(the secret is shown only now; the old one no longer works)",
                    rotated.client_id,
                    rotated.client_secret.expose()
                )
            })?;
        }
        ClientCommand::RegistrationToken { tenant, uses, expires_in, json } => {
            let t = crate::tenancy::find_tenant(db, &tenant).await?;
            let issued = clients::registration::issue_token(db, operator, t.id, uses, expires_in).await?;
            let out = serde_json::json!({
                "tenant": tenant,
                "id": issued.id,
                "initial_access_token": issued.token.expose(),
                "uses": issued.uses,
                "expires_at": issued.expires_at,
            });
            print(json, &out, || {
                format!(
                    "initial access token for {tenant} (shown once; {} registrations until {}):\n{}",
                    issued.uses,
                    issued.expires_at,
                    issued.token.expose()
                )
            })?;
        }
        ClientCommand::Delete { client_id, json } => {
            let deleted = clients::change::delete_client(db, operator, &client_id).await?;
            print(json, &deleted, || {
                format!(
                    "deleted client {}; {} token families and {} access tokens ended",
                    deleted.client_id, deleted.families_revoked, deleted.access_tokens_revoked
                )
            })?;
        }
    }
    Ok(())
}
