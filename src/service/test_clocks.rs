//! Test clocks (SPEC section 5): the clocks themselves, the time a write to a clocked
//! object lives at, and the engine's step that advances a clock.
//!
//! # The time of an object
//!
//! `Call::now` is the request's wall time: events, idempotency keys and retention read
//! it. What an object records and the date rules it is judged by read the *object
//! time* instead: its customer's clock's `frozen_time`, or `Call::now` for objects on
//! no clock. A write that touches an object asks for it first:
//!
//! ```ignore
//! let at = test_clocks::time_for(tx, call, Holder::Guarantee, &guarantee_id).await?;
//! ```
//!
//! which also refuses the write (400 `test_clock_advancing`) while the clock advances,
//! and share-locks the clock until commit (so an advance cannot start half-way). Ask
//! before locking the object itself: clock, then object, as every writer does. The
//! claims engine takes the time of clocked objects from `store::test_clocks::
//! times_of_guarantees` (the clock's `frozen_time`) and, while a clock advances, from
//! each guarantee's due date ([`super::review::advance_guarantees`]).

use super::rail::PayoutRail;
use super::review::{self, PayoutConfig};
use super::{Call, check_cursors, found, record_event};
use crate::clock::Clock;
use crate::domain::event::EventType;
use crate::domain::test_clock::{AdvanceError, LIFETIME, MAX_ADVANCE, TestClock, TestClockStatus};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::resource;
use crate::store::test_clocks::Holder;
use crate::store::{self, Page, PageRequest, Store, Tx};

/// The time objects on `clock` live at: its `frozen_time`, or the request's wall time
/// for objects on no clock.
pub fn object_time(call: &Call, clock: Option<&TestClock>) -> i64 {
    clock.map_or(call.now, |c| c.frozen_time)
}

/// Refuses writes to the objects of a clock that is not `ready`.
pub fn check_writable(clock: &TestClock) -> ApiResult<()> {
    match clock.status {
        TestClockStatus::Ready => Ok(()),
        TestClockStatus::Advancing => Err(ApiError::state(
            "test_clock_advancing",
            format!(
                "The test clock {} is advancing: its objects cannot change until it is ready again. Retrieve the \
                 clock to see when its status is `ready`.",
                clock.id
            ),
        )),
        TestClockStatus::InternalFailure => Err(ApiError::state(
            "test_clock_internal_failure",
            format!("The test clock {} failed to advance; delete it and start again.", clock.id),
        )),
    }
}

/// The object time of a write to the object `id` (a customer, a guarantee or a claim of
/// the caller's scope), refusing it while the object's clock advances. An object that
/// does not exist is on no clock: the caller's own read answers its 404.
pub async fn time_for(tx: &mut Tx, call: &Call, holder: Holder, id: &str) -> ApiResult<i64> {
    let clock = store::test_clocks::clock_of(tx, &call.scope, holder, id).await?;
    write_time(call, clock.as_ref())
}

/// `time_for` of an object read together with its clock (as
/// `store::guarantees::policy_and_tenant` reads a tenant's): the one statement asks both.
pub fn write_time(call: &Call, clock: Option<&TestClock>) -> ApiResult<i64> {
    if let Some(c) = clock {
        check_writable(c)?;
    }
    Ok(object_time(call, clock))
}

fn not_found(id: &str, param: &str) -> ApiError {
    ApiError::no_such(Kind::TestClock.object(), id, Some(param))
}

/// The clock a new customer is to live on, for its create: it exists in the caller's
/// scope (test mode only) and is ready.
pub async fn for_new_customer(tx: &mut Tx, call: &Call, id: &str) -> ApiResult<TestClock> {
    if call.scope.livemode {
        return Err(ApiError::invalid(
            "test_clock_livemode",
            "test_clock",
            "Test clocks exist in test mode only: create the customer with a test key to put it on a clock.",
        ));
    }
    let lock = store::test_clocks::get_for_update(tx, &call.scope, id).await?;
    let clock = lock.ok_or_else(|| not_found(id, "test_clock"))?;
    check_writable(&clock)?;
    Ok(clock)
}

pub async fn create(tx: &mut Tx, call: &Call, frozen_time: i64, name: Option<String>) -> ApiResult<TestClock> {
    let clock = TestClock {
        id: Kind::TestClock.new_id(),
        frozen_time,
        status: TestClockStatus::Ready,
        name,
        deletes_after: call.now + LIFETIME,
        advance_to: None,
        livemode: call.scope.livemode,
        created: call.now,
    };
    store::test_clocks::insert(tx, &call.scope, &clock).await?;
    record_event(tx, call, EventType::TestClockCreated, &clock).await?;
    Ok(clock)
}

pub async fn retrieve(store: &Store, call: &Call, id: &str) -> ApiResult<TestClock> {
    found(
        &resource::TEST_CLOCK,
        id,
        store.run(async |conn| store::test_clocks::get(conn, &call.scope, id).await).await?,
    )
}

pub async fn list(store: &Store, call: &Call, page: &PageRequest) -> ApiResult<Page<TestClock>> {
    store
        .run(async |conn| {
            check_cursors(conn, call, &resource::TEST_CLOCK, page).await?;
            Ok(store::test_clocks::list(conn, &call.scope, page, ()).await?)
        })
        .await
}

/// Deletes the clock and its customers with everything under them, in the caller's
/// transaction. Allowed in any status: an advance in progress finds its clock gone and
/// stops (its lease holder's writes touch rows that no longer exist).
pub async fn delete(tx: &mut Tx, call: &Call, id: &str) -> ApiResult<TestClock> {
    let clock = store::test_clocks::get_for_update(tx, &call.scope, id).await?.ok_or_else(|| not_found(id, "id"))?;
    store::test_clocks::delete_with_objects(tx, &call.scope, id).await?;
    record_event(tx, call, EventType::TestClockDeleted, &clock).await?;
    Ok(clock)
}

/// Starts an advance to `frozen_time`: the clock is `advancing` when this commits, and
/// the claims engine ([`advance_step`]) applies what falls due on the way.
pub async fn advance(tx: &mut Tx, call: &Call, id: &str, frozen_time: i64) -> ApiResult<TestClock> {
    let mut clock =
        store::test_clocks::get_for_update(tx, &call.scope, id).await?.ok_or_else(|| not_found(id, "id"))?;
    clock.start_advance(frozen_time).map_err(|e| match e {
        AdvanceError::Advancing | AdvanceError::Failed => {
            check_writable(&clock).err().unwrap_or_else(|| ApiError::internal(e))
        }
        AdvanceError::NotLater => ApiError::invalid(
            "test_clock_frozen_time_invalid",
            "frozen_time",
            format!("The frozen_time must be later than the clock's current time ({}).", clock.frozen_time),
        ),
        AdvanceError::TooFar => ApiError::invalid(
            "test_clock_frozen_time_invalid",
            "frozen_time",
            format!(
                "A clock advances at most five years at a time: the frozen_time can be at most {}.",
                clock.frozen_time + MAX_ADVANCE
            ),
        ),
    })?;
    store::test_clocks::update(tx, &call.scope, &clock).await?;
    record_event(tx, call, EventType::TestClockAdvancing, &clock).await?;
    Ok(clock)
}

/// The claims engine's step for test clocks: leases one advancing clock and takes the
/// next piece of its advance, in time order: first the reviews and payouts of claims
/// filed at the clock's old time, then the guarantees' activations and expirations up
/// to the new time, each at its own date, with their events, up to `limit` at a time.
/// When nothing is left, the clock shows the new time and is `ready` (event
/// `test_helpers.test_clock.ready`). Returns how much it did (0: no clock to advance).
pub async fn advance_step(
    store: &Store,
    rail: &dyn PayoutRail,
    clock: &dyn Clock,
    limit: usize,
    config: &PayoutConfig,
) -> ApiResult<usize> {
    let now = clock.now();
    if !store.run(async |conn| store::test_clocks::any_advancing(conn).await).await? {
        return Ok(0);
    }
    let mut tx = store.begin().await?;
    let leased = store::test_clocks::lease_advancing(&mut tx, now, now + config.lease_seconds).await?;
    tx.commit().await?;
    let Some((scope, mut tc, token)) = leased else { return Ok(0) };
    let until = tc.advance_to.unwrap_or(tc.frozen_time);
    let work = async {
        let reviewed = review::review_due(store, Some(&tc.id), now, limit).await?;
        if reviewed > 0 {
            return Ok(reviewed);
        }
        let paid = review::pay_due(store, Some(&tc.id), rail, clock, limit, config).await?;
        if paid > 0 {
            return Ok(paid);
        }
        review::advance_guarantees(store, &scope, &tc.id, until, now, limit).await
    };
    let done: ApiResult<usize> = work.await;
    match done {
        Ok(0) => {
            let mut tx = store.begin().await?;
            tc.finish_advance();
            if store::test_clocks::finish_advance(&mut tx, &tc, token).await? {
                record_event(&mut tx, &Call::job(scope, now), EventType::TestClockReady, &tc).await?;
            }
            tx.commit().await?;
            Ok(1)
        }
        other => {
            store.run(async |conn| store::test_clocks::release(conn, &tc.id, token).await).await?;
            other
        }
    }
}

/// Deletes clocks past their `deletes_after` with their objects, up to `limit`, each in
/// its own transaction (housekeeping). Returns how many went.
pub async fn purge_expired(store: &Store, now: i64, limit: i64) -> ApiResult<usize> {
    let expired = store.run(async |conn| store::test_clocks::past_lifetime(conn, now, limit).await).await?;
    for (scope, id) in &expired {
        let mut tx = store.begin().await?;
        delete(&mut tx, &Call::job(scope.clone(), now), id).await?;
        tx.commit().await?;
    }
    Ok(expired.len())
}
