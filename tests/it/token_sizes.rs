//! Access-token size per signing algorithm, with the claims a device's token carries (issue
//! #12, "small tokens"): a microcontroller keeps the token in RAM and sends it in every request
//! header. `cargo test --test it token_sizes -- --nocapture` prints the table of the README's
//! "Tokens" section.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::flow::{Provider, claims, header, tokens};

/// The length of a JWT whose payload leaves out `omit`, with the same header and signature
/// length as `jwt` (what a token without those claims would measure).
fn without(jwt: &str, omit: &[&str]) -> usize {
    let mut payload = claims(jwt);
    for name in omit {
        payload.as_object_mut().unwrap().remove(*name);
    }
    let parts: Vec<&str> = jwt.split('.').collect();
    parts[0].len() + 1 + URL_SAFE_NO_PAD.encode(serde_json::to_vec(&payload).unwrap()).len() + 1 + parts[2].len()
}

#[tokio::test]
async fn access_token_sizes_per_algorithm() {
    let p = Provider::start().await;
    let mut sizes = Vec::new();
    for alg in ["RS256", "ES256", "EdDSA"] {
        let mut owner = p.t.owner().await;
        sqlx::query("UPDATE clients SET signing_alg = $1 WHERE client_id = $2")
            .bind(alg)
            .bind(&p.client_id)
            .execute(&mut owner)
            .await
            .unwrap();
        let (_, body) = tokens(&p).await;
        let at = body["access_token"].as_str().unwrap();
        assert_eq!(header(at)["alg"], alg);
        // What RFC 9068 §2.2 does not require, and a device's API rarely reads.
        let optional = without(at, &["tenant", "auth_time", "acr", "amr"]);
        let signature = at.rsplit('.').next().unwrap().len();
        println!("| {alg} | {} | {signature} | {optional} |", at.len());
        sizes.push((alg, at.len(), optional));
    }
    let size = |alg: &str| sizes.iter().find(|s| s.0 == alg).unwrap().1;
    // A 2048-bit RSA signature is 342 characters, an ES256 or Ed25519 one 86.
    assert!(size("ES256") + 250 < size("RS256"), "{sizes:?}");
    assert!(size("EdDSA") + 250 < size("RS256"), "{sizes:?}");
}
