//! The OpenID Connect / OAuth 2 protocol layer, written here (not on oxide-auth, which has no
//! OpenID Connect, device grant, introspection or revocation, and synchronous traits): small
//! handlers over typed requests, each citing the section it follows.

pub mod authorize;
pub mod bearer;
pub mod client_auth;
pub mod device;
pub mod discovery;
pub mod dpop;
pub mod grant;
pub mod introspect;
pub mod issue;
pub mod logout;
pub mod meta;
pub mod registration;
pub mod revoke;
pub mod token;
pub mod types;
pub mod userinfo;
