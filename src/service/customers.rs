//! Customers: create, read, update, list.

use super::{Call, apply_metadata, check_cursors, found, record_event, record_update, test_clocks};
use crate::domain::Patch;
use crate::domain::customer::Customer;
use crate::domain::event::EventType;
use crate::domain::metadata::{Metadata, MetadataUpdate};
use crate::error::{ApiError, ApiResult};
use crate::ids::Kind;
use crate::resource;
use crate::store::test_clocks::Holder;
use crate::store::{self, Page, PageRequest, Store, Tx};

#[derive(Debug, Default)]
pub struct NewCustomer {
    pub name: Option<String>,
    pub email: Option<String>,
    pub score: Option<i64>,
    pub metadata: Option<MetadataUpdate>,
    /// The test clock the customer is to live on (test mode only).
    pub test_clock: Option<String>,
}

#[derive(Debug)]
pub struct CustomerPatch {
    pub name: Patch<String>,
    pub email: Patch<String>,
    pub score: Patch<i64>,
    pub metadata: Option<MetadataUpdate>,
}

pub async fn create(tx: &mut Tx, call: &Call, input: NewCustomer) -> ApiResult<Customer> {
    let clock = match &input.test_clock {
        Some(id) => Some(test_clocks::for_new_customer(tx, call, id).await?),
        None => None,
    };
    let customer = Customer {
        id: Kind::Customer.new_id(),
        name: input.name,
        email: input.email,
        score: input.score,
        metadata: apply_metadata(&Metadata::new(), input.metadata.as_ref())?,
        test_clock: clock.as_ref().map(|c| c.id.clone()),
        livemode: call.scope.livemode,
        created: test_clocks::object_time(call, clock.as_ref()),
    };
    store::customers::insert(tx, &call.scope, &customer).await?;
    record_event(tx, call, EventType::CustomerCreated, &customer).await?;
    Ok(customer)
}

pub async fn retrieve(store: &Store, call: &Call, id: &str) -> ApiResult<Customer> {
    found(&resource::CUSTOMER, id, store.run(async |conn| store::customers::get(conn, &call.scope, id).await).await?)
}

pub async fn update(tx: &mut Tx, call: &Call, id: &str, input: CustomerPatch) -> ApiResult<Customer> {
    test_clocks::time_for(tx, call, Holder::Customer, id).await?;
    let before = store::customers::get_for_update(tx, &call.scope, id)
        .await?
        .ok_or_else(|| ApiError::no_such(Kind::Customer.object(), id, Some("id")))?;
    let mut after = before.clone();
    input.name.apply_to(&mut after.name);
    input.email.apply_to(&mut after.email);
    input.score.apply_to(&mut after.score);
    after.metadata = apply_metadata(&before.metadata, input.metadata.as_ref())?;
    store::customers::update(tx, &call.scope, &after).await?;
    record_update(tx, call, EventType::CustomerUpdated, &before, &after).await?;
    Ok(after)
}

pub async fn list(store: &Store, call: &Call, page: &PageRequest, email: Option<String>) -> ApiResult<Page<Customer>> {
    store
        .run(async |conn| {
            check_cursors(conn, call, &resource::CUSTOMER, page).await?;
            Ok(store::customers::list(conn, &call.scope, page, email).await?)
        })
        .await
}
