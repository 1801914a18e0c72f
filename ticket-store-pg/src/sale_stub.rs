//! TEMP: a placeholder so the workspace builds while the PostgreSQL implementation is
//! written on another branch. The lead drops this commit before merging.
use async_trait::async_trait;
use ticket_core::error::{Error, Result};
use ticket_core::ids::SessionId;
use ticket_core::model::sale::{
    CapacityChange, CapacityOutcome, SaleStateChange, SaleStateOutcome, SaleSwitch,
};
use ticket_core::store::SaleControl;

use crate::PgStore;

#[async_trait]
impl SaleControl for PgStore {
    async fn sale_switch(&self, _session: SessionId) -> Result<SaleSwitch> {
        Ok(SaleSwitch::default())
    }
    async fn set_sale_state(&self, _req: SaleStateChange) -> Result<SaleStateOutcome> {
        Err(Error::Corrupt("TEMP stub".into()))
    }
    async fn change_capacity(&self, _req: CapacityChange) -> Result<CapacityOutcome> {
        Err(Error::Corrupt("TEMP stub".into()))
    }
}
