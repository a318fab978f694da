//! Remembered consents: per tenant, user and client, the scopes the user has allowed.

use uuid::Uuid;

use super::Tx;

/// The scopes the user has allowed this client, in the transaction's tenant.
pub async fn granted(tx: &mut Tx, user_id: Uuid, client_id: &str) -> Result<Vec<String>, sqlx::Error> {
    let scopes: Option<Vec<String>> =
        sqlx::query_scalar("SELECT scopes FROM consents WHERE user_id = $1 AND client_id = $2")
            .bind(user_id)
            .bind(client_id)
            .fetch_optional(tx.conn())
            .await?;
    Ok(scopes.unwrap_or_default())
}

/// Adds scopes to what the user has allowed this client.
pub async fn grant(tx: &mut Tx, user_id: Uuid, client_id: &str, scopes: &[String]) -> Result<(), sqlx::Error> {
    let tenant_id = tx.tenant_id().unwrap_or_default();
    sqlx::query(
        "INSERT INTO consents (tenant_id, user_id, client_id, scopes) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (tenant_id, user_id, client_id) DO UPDATE \
         SET scopes = ARRAY(SELECT DISTINCT unnest(consents.scopes || EXCLUDED.scopes) ORDER BY 1), granted_at = now()",
    )
    .bind(tenant_id)
    .bind(user_id)
    .bind(client_id)
    .bind(scopes)
    .execute(tx.conn())
    .await?;
    Ok(())
}
