//! The `claims` request parameter (OIDC Core §5.5) and what a request asks of the sign-in's
//! `acr` (OIDC Core §3.1.2.1 `acr_values`, §5.5.1.1).
//!
//! The rule for the second factor, in one place:
//! - **Demanded** only by an essential `acr` claim (§5.5.1.1) whose `value`/`values` allow
//!   the MFA value alone, or by `acr_values` whose only value we know is the MFA one (a
//!   relying party that names nothing else would reject a password sign-in's token), besides
//!   the policies outside the request (client or tenant `require_mfa`, admins, a user who has
//!   a second factor: `identity::security::second_factor_required`).
//! - **Preferred** when MFA comes first among several values, or in a voluntary `acr` claim:
//!   `acr_values` is a voluntary request in order of preference (§3.1.2.1), so a user without
//!   a second factor signs in with the password and gets the password `acr`; a user with one
//!   passes it anyway (the account rule above), which meets the preference.
//! - Values we do not issue are ignored. An essential `acr` that none of our values can meet
//!   is a failed authentication (§5.5.1.1), answered `unmet_authentication_requirements`
//!   (OpenID Connect Core Error Code unmet_authentication_requirements 1.0, §1: it "SHALL be
//!   used" for an essential `acr` the OP cannot meet).

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::session::{ACR_MFA, ACR_PASSWORD};

/// The largest `claims` parameter accepted, in bytes.
pub const MAX_CLAIMS_BYTES: usize = 4096;

/// The `acr` values we issue, weakest first.
const KNOWN_ACRS: [&str; 2] = [ACR_PASSWORD, ACR_MFA];

/// A parsed `claims` parameter (OIDC Core §5.5): the claims asked for in the ID token and at
/// the userinfo endpoint. Members not understood are ignored, as §5.5 requires.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimsRequest {
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "some")]
    pub userinfo: Option<ClaimSet>,
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "some")]
    pub id_token: Option<ClaimSet>,
}

/// Claim name → its request (`None`: the JSON `null` of a claim asked for by name only).
/// A claim named twice is refused: which of the two would count is anyone's guess.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(transparent)]
pub struct ClaimSet(BTreeMap<String, Option<ClaimRequest>>);

/// One claim's request (OIDC Core §5.5.1).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ClaimRequest {
    /// Essential rather than voluntary.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub essential: bool,
    /// The claim with this value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// The claim with one of these values, in order of preference.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<Value>>,
}

/// A claim asked for by name only (`null`): voluntary, any value.
const BY_NAME: ClaimRequest = ClaimRequest { essential: false, value: None, values: None };

impl ClaimsRequest {
    /// The subject the ID token must be for, when `sub` is asked for with a `value` (§5.5.1:
    /// no positive answer for any other user, even one with a session).
    pub fn sub_value(&self) -> Option<&Value> {
        self.id_token.as_ref()?.get("sub")?.value.as_ref()
    }

    /// Parses the parameter strictly: a JSON object of at most [`MAX_CLAIMS_BYTES`], whose
    /// `userinfo` and `id_token` are objects of claim name → `null` or an object with a
    /// boolean `essential`, any `value` and an array `values`. The error is for
    /// `error_description`.
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.len() > MAX_CLAIMS_BYTES {
            return Err("the claims parameter is too large");
        }
        let malformed = "the claims parameter is not a valid claims request (OIDC Core 5.5)";
        // serde's derived structs also accept JSON arrays; the shape is checked on the tree
        // first, then the typed pass checks the types and refuses repeated names.
        let tree: Value = serde_json::from_str(raw).map_err(|_| malformed)?;
        if !well_shaped(&tree) {
            return Err(malformed);
        }
        serde_json::from_str(raw).map_err(|_| malformed)
    }

    /// The stored form of a request (see `session::Pending::claims`).
    pub fn to_stored(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }

    /// A request back from its stored form.
    pub fn from_stored(stored: &Value) -> Option<Self> {
        Self::deserialize(stored).ok()
    }
}

impl ClaimSet {
    /// The request for `name`, if it was asked for (a `null` request counts as voluntary).
    pub fn get(&self, name: &str) -> Option<&ClaimRequest> {
        self.0.get(name).map(|r| r.as_ref().unwrap_or(&BY_NAME))
    }

    /// The claims asked for, by name.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.0.keys().map(String::as_str)
    }
}

impl ClaimRequest {
    /// The values asked for, `value` first, then `values`; `None` when neither restricts it.
    pub fn wanted(&self) -> Option<Vec<&Value>> {
        if self.value.is_none() && self.values.is_none() {
            return None;
        }
        Some(self.value.iter().chain(self.values.iter().flatten()).collect())
    }
}

/// The top level and the two locations are objects, and each claim is `null` or an object.
fn well_shaped(tree: &Value) -> bool {
    let Value::Object(top) = tree else { return false };
    ["userinfo", "id_token"].iter().all(|location| match top.get(*location) {
        None => true,
        Some(Value::Object(claims)) => claims.values().all(|c| c.is_null() || c.is_object()),
        Some(_) => false,
    })
}

/// `userinfo` or `id_token` present: an object, never `null`.
fn some<'de, D: Deserializer<'de>>(d: D) -> Result<Option<ClaimSet>, D::Error> {
    ClaimSet::deserialize(d).map(Some)
}

impl<'de> Deserialize<'de> for ClaimSet {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Names;
        impl<'de> Visitor<'de> for Names {
            type Value = ClaimSet;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of claim requests")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ClaimSet, A::Error> {
                let mut set = BTreeMap::new();
                while let Some((name, request)) = map.next_entry::<String, Option<ClaimRequest>>()? {
                    if set.insert(name, request).is_some() {
                        return Err(serde::de::Error::custom("a claim is requested twice"));
                    }
                }
                Ok(ClaimSet(set))
            }
        }
        d.deserialize_map(Names)
    }
}

/// What a request asks of the sign-in's `acr`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcrRequest {
    /// The second factor is demanded (see the module's rule).
    pub mfa_demanded: bool,
    /// The values an essential `acr` claim allows, of those we issue, in order of
    /// preference: the issued `acr` must be one of them (§5.5.1.1). `None`: any.
    pub essential: Option<Vec<String>>,
}

/// Why a request's `acr` cannot be taken on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcrRefusal {
    /// `invalid_request`, with this description.
    Invalid(&'static str),
    /// An essential `acr` of values we never issue: `unmet_authentication_requirements`.
    Unmet,
}

/// Reads `acr_values` (a space-separated preference list, §3.1.2.1) and the ID token's `acr`
/// claim request (§5.5.1.1) into what the sign-in must achieve. An essential claim with
/// values decides alone; otherwise `acr_values` may demand the second factor by naming no
/// other value we know.
pub fn acr_request(acr_values: Option<&str>, claims: Option<&ClaimsRequest>) -> Result<AcrRequest, AcrRefusal> {
    if acr_values.is_some_and(|v| v.len() > 2048) {
        return Err(AcrRefusal::Invalid("acr_values is too long"));
    }
    let claim = claims.and_then(|c| c.id_token.as_ref()).and_then(|set| set.get("acr"));
    if let Some(claim) = claim
        && claim.essential
        && let Some(wanted) = claim.wanted()
    {
        let mut strings = Vec::with_capacity(wanted.len());
        for v in wanted {
            strings.push(v.as_str().ok_or(AcrRefusal::Invalid("acr values in the claims parameter must be strings"))?);
        }
        let allowed = known(strings);
        if allowed.is_empty() {
            return Err(AcrRefusal::Unmet);
        }
        return Ok(AcrRequest {
            mfa_demanded: allowed == [ACR_MFA],
            essential: Some(allowed.into_iter().map(str::to_owned).collect()),
        });
    }
    // Voluntary from here on: a voluntary acr claim is only a preference, and so is a list.
    let listed = known(acr_values.unwrap_or("").split(' '));
    Ok(AcrRequest { mfa_demanded: listed == [ACR_MFA], essential: None })
}

/// The values of `requested` that we issue, in their order, each once.
fn known<'a>(requested: impl IntoIterator<Item = &'a str>) -> Vec<&'static str> {
    let mut out = Vec::new();
    for value in requested {
        if let Some(ours) = KNOWN_ACRS.iter().find(|k| **k == value)
            && !out.contains(ours)
        {
            out.push(*ours);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acr(values: Option<&str>, claims: Option<&str>) -> Result<AcrRequest, AcrRefusal> {
        let parsed = claims.map(|c| ClaimsRequest::parse(c).unwrap());
        acr_request(values, parsed.as_ref())
    }

    fn demanded(values: Option<&str>, claims: Option<&str>) -> bool {
        acr(values, claims).unwrap().mfa_demanded
    }

    #[test]
    fn a_list_of_several_values_is_a_preference() {
        let both = format!("{ACR_PASSWORD} {ACR_MFA}");
        let reversed = format!("{ACR_MFA} {ACR_PASSWORD}");
        assert!(!demanded(Some(&both), None));
        assert!(!demanded(Some(&reversed), None));
        assert!(!demanded(Some(ACR_PASSWORD), None));
        assert!(!demanded(None, None));
        assert_eq!(acr(Some(&reversed), None).unwrap().essential, None, "acr_values is never essential");
    }

    #[test]
    fn mfa_alone_among_known_values_is_demanded() {
        assert!(demanded(Some(ACR_MFA), None));
        assert!(demanded(Some(&format!("urn:other:gold {ACR_MFA} urn:other:silver")), None), "unknown ignored");
        assert!(demanded(Some(&format!("  {ACR_MFA}  {ACR_MFA} ")), None), "extra spaces, a repeat");
        assert!(!demanded(Some("urn:other:gold"), None), "nothing we know: nothing asked");
        assert!(!demanded(Some(&ACR_MFA.to_uppercase()), None), "acr values are case-sensitive");
    }

    #[test]
    fn an_essential_acr_claim_decides() {
        let only_mfa = format!(r#"{{"id_token":{{"acr":{{"essential":true,"value":"{ACR_MFA}"}}}}}}"#);
        let got = acr(None, Some(&only_mfa)).unwrap();
        assert!(got.mfa_demanded);
        assert_eq!(got.essential, Some(vec![ACR_MFA.to_owned()]));
        // It outranks a voluntary acr_values either way.
        assert!(demanded(Some(ACR_PASSWORD), Some(&only_mfa)));
        let either =
            format!(r#"{{"id_token":{{"acr":{{"essential":true,"values":["{ACR_MFA}","{ACR_PASSWORD}"]}}}}}}"#);
        let got = acr(Some(ACR_MFA), Some(&either)).unwrap();
        assert!(!got.mfa_demanded, "a password sign-in is one of the values allowed");
        assert_eq!(got.essential, Some(vec![ACR_MFA.to_owned(), ACR_PASSWORD.to_owned()]));
        let unknown_too = format!(r#"{{"id_token":{{"acr":{{"essential":true,"values":["urn:x","{ACR_MFA}"]}}}}}}"#);
        assert!(demanded(None, Some(&unknown_too)));
        // Essential without values: any acr does, and acr_values may still demand.
        assert!(demanded(Some(ACR_MFA), Some(r#"{"id_token":{"acr":{"essential":true}}}"#)));
        assert_eq!(acr(None, Some(r#"{"id_token":{"acr":{"essential":true}}}"#)).unwrap().essential, None);
    }

    #[test]
    fn a_voluntary_acr_claim_is_a_preference() {
        let voluntary = format!(r#"{{"id_token":{{"acr":{{"essential":false,"value":"{ACR_MFA}"}}}}}}"#);
        assert_eq!(acr(None, Some(&voluntary)).unwrap(), AcrRequest::default());
        let unsaid = format!(r#"{{"id_token":{{"acr":{{"values":["{ACR_MFA}"]}}}}}}"#);
        assert_eq!(acr(None, Some(&unsaid)).unwrap(), AcrRequest::default());
        // Asked for at userinfo: acr is an ID token claim (§5.5.1.1); nothing demanded.
        let userinfo = format!(r#"{{"userinfo":{{"acr":{{"essential":true,"value":"{ACR_MFA}"}}}}}}"#);
        assert_eq!(acr(None, Some(&userinfo)).unwrap(), AcrRequest::default());
    }

    #[test]
    fn an_essential_acr_we_never_issue_is_unmet() {
        let foreign = r#"{"id_token":{"acr":{"essential":true,"values":["urn:other:gold","urn:other:silver"]}}}"#;
        assert_eq!(acr(Some(ACR_MFA), Some(foreign)), Err(AcrRefusal::Unmet));
        let empty = r#"{"id_token":{"acr":{"essential":true,"values":[]}}}"#;
        assert_eq!(acr(None, Some(empty)), Err(AcrRefusal::Unmet), "one of no values");
        let number = r#"{"id_token":{"acr":{"essential":true,"value":2}}}"#;
        assert!(matches!(acr(None, Some(number)), Err(AcrRefusal::Invalid(_))));
        // Voluntary and foreign: ignored.
        assert_eq!(acr(None, Some(r#"{"id_token":{"acr":{"value":"urn:x"}}}"#)).unwrap(), AcrRequest::default());
        assert!(matches!(acr(Some(&"a ".repeat(1025)), None), Err(AcrRefusal::Invalid(_))));
    }

    #[test]
    fn parses_the_shapes_of_section_5_5() {
        let raw = r#"{"userinfo":{"given_name":{"essential":true},"nickname":null,"email":{"essential":true},
            "picture":null,"http://example.info/claims/groups":null},
            "id_token":{"auth_time":{"essential":true},"acr":{"values":["urn:mace:incommon:iap:silver"]},
            "sub":{"value":"248289761001"}},"something_new":[1,2]}"#;
        let parsed = ClaimsRequest::parse(raw).unwrap();
        let userinfo = parsed.userinfo.as_ref().unwrap();
        assert!(userinfo.get("given_name").unwrap().essential);
        assert_eq!(userinfo.get("nickname"), Some(&BY_NAME), "null: by name, voluntary");
        assert_eq!(userinfo.get("name"), None);
        assert_eq!(userinfo.names().count(), 5);
        let id = parsed.id_token.as_ref().unwrap();
        assert_eq!(id.get("sub").unwrap().wanted(), Some(vec![&Value::from("248289761001")]));
        assert_eq!(id.get("auth_time").unwrap().wanted(), None);
        // Members not understood are ignored (§5.5, §5.5.1).
        let extra = ClaimsRequest::parse(r#"{"id_token":{"email":{"essential":true,"purpose":"x"}}}"#).unwrap();
        assert!(extra.id_token.unwrap().get("email").unwrap().essential);
        assert_eq!(ClaimsRequest::parse("{}").unwrap(), ClaimsRequest::default());
        // Stored and read back unchanged.
        assert_eq!(ClaimsRequest::from_stored(&parsed.to_stored()), Some(parsed));
    }

    #[test]
    fn refuses_malformed_and_oversized_requests() {
        for bad in [
            "",
            "not json",
            "null",
            "[]",
            r#""id_token""#,
            r#"[{"acr":null},null]"#,
            r#"{"id_token":null}"#,
            r#"{"id_token":[]}"#,
            r#"{"id_token":"acr"}"#,
            r#"{"id_token":{"acr":true}}"#,
            r#"{"id_token":{"acr":"urn:laventecare:acr:mfa"}}"#,
            r#"{"id_token":{"acr":[true,"urn:laventecare:acr:mfa"]}}"#,
            r#"{"id_token":{"acr":{"essential":"true"}}}"#,
            r#"{"id_token":{"acr":{"essential":null}}}"#,
            r#"{"id_token":{"acr":{"values":"urn:laventecare:acr:mfa"}}}"#,
            r#"{"id_token":{"acr":{"essential":true,"essential":false}}}"#,
            r#"{"id_token":{"acr":null,"acr":{"essential":true}}}"#,
            r#"{"id_token":{},"id_token":{"acr":null}}"#,
            r#"{"id_token":{"acr":null}} trailing"#,
            r#"{"id_token":{"acr":null}"#,
        ] {
            assert!(ClaimsRequest::parse(bad).is_err(), "accepted {bad:?}");
        }
        let padding = " ".repeat(MAX_CLAIMS_BYTES);
        let big = format!(r#"{{"id_token":{{"acr":null}}}}{padding}"#);
        assert_eq!(ClaimsRequest::parse(&big), Err("the claims parameter is too large"));
        let just_fits = format!("{{}}{}", " ".repeat(MAX_CLAIMS_BYTES - 2));
        assert!(ClaimsRequest::parse(&just_fits).is_ok(), "the limit itself is allowed");
        let deep = format!(r#"{{"id_token":{{"x":{{"value":{}{}}}}}}}"#, "[".repeat(200), "]".repeat(200));
        assert!(ClaimsRequest::parse(&deep).is_err(), "nesting beyond serde_json's limit");
    }
}
