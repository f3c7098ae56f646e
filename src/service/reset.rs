//! A clean slate for a test suite: every test-mode object of the account deleted in
//! one transaction; keys and webhook endpoints stay. No events are sent.

use super::Call;
use crate::error::{ApiError, ApiResult};
use crate::store::{self, Tx};

/// Deletes the caller's test-mode data; returns how many rows went, per table.
pub async fn reset(tx: &mut Tx, call: &Call) -> ApiResult<Vec<(&'static str, u64)>> {
    if call.scope.livemode {
        // The route answers 404 to live keys before it gets here; this is the backstop.
        return Err(ApiError::internal("reset called with a live scope"));
    }
    Ok(store::reset::reset(tx, &call.scope, call.idempotency_key.as_deref()).await?)
}
