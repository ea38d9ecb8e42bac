//! Ending a usuario's tokens (§6.2): `tokens_validos_desde` is bumped in the
//! job's transaction and mirrored into the revocation bucket after commit, so
//! verifiers that read only NATS refuse the old tokens.

use std::time::Duration;

use gad_shared::auth::{Revocations, UserRevocation};

use super::super::HandlerContext;

/// SQL for the new `tokens_validos_desde`: the next whole second. Tokens carry
/// `iat` in whole seconds, so a token from the same second as the change must
/// be refused too; login waits for that second before issuing (ingress).
pub const BUMP: &str = "date_trunc('second', clock_timestamp()) + interval '1 second'";

/// SQL for the bucket's `valid_since` of a row (unix seconds).
pub const VALID_SINCE: &str = "ceil(extract(epoch FROM tokens_validos_desde))::bigint";

const ATTEMPTS: u32 = 5;
const PUT_TIMEOUT: Duration = Duration::from_secs(2);

/// Writes `u.<id>` = `{"valid_since": …}`. The change is committed already and
/// cannot be undone, so a NATS failure is retried briefly, then reported for
/// an operator: until it lands, the old tokens live on to their expiry.
pub async fn publish(ctx: &HandlerContext, usuario_id: i64, valid_since: i64) {
    let value = match serde_json::to_vec(&UserRevocation { valid_since }) {
        Ok(v) => v,
        Err(e) => {
            tracing::error!(usuario_id, error = %e, "revocation entry not encoded");
            return;
        }
    };
    let key = Revocations::user_key(usuario_id);
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        match tokio::time::timeout(PUT_TIMEOUT, ctx.revocation.put(&key, value.clone().into())).await {
            Ok(Ok(_)) => return,
            Ok(Err(e)) => tracing::warn!(usuario_id, attempt, error = %e, "revocation put failed"),
            Err(_) => tracing::warn!(usuario_id, attempt, "revocation put timed out"),
        }
        if attempt < ATTEMPTS {
            tokio::time::sleep(delay).await;
            delay *= 2;
        }
    }
    tracing::error!(
        usuario_id,
        valid_since,
        "tokens_validos_desde not mirrored to the revocation bucket"
    );
}
