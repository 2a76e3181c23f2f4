//! Downline users who sign up through a distributor's store before, or
//! without, ordering (下线用户).
//!
//! A user is one buyer record under the distributor, whether it came from a
//! registration or from a first order: whichever arrives first creates it
//! (conditionally), so a user is counted once. A registered user is valid
//! from its first paid order on, as the ledger counts it.

use aws_sdk_dynamodb::types::{Put, TransactWriteItem};
use tier_domain::ids::{BuyerId, DistributorId};
use tier_domain::metrics::MetricsDelta;

use crate::item::{n, new_item, s};
use crate::keys;
use crate::ledger::GroupError;
use crate::metrics::metrics_update;
use crate::table::{Table, TxOutcome};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registered {
    /// `false`: the user was already counted (a redelivery, or it had
    /// ordered first).
    pub created: bool,
    /// The distributor's uplines: the first one's network count moved (or,
    /// for a redelivery, may have); the rest pull it.
    pub ancestors: Vec<DistributorId>,
}

impl Table {
    /// Counts `user` as a downline user of `distributor` and as a user in
    /// its upline's network, once: the buyer record, the distributor's
    /// metrics and the upline's, in one transaction conditional on the
    /// record not existing. The ancestors above count it by pull
    /// ([`crate::network`]); tiers are evaluated after, by the caller.
    pub async fn register_downline_user(
        &self,
        distributor: &DistributorId,
        user: &BuyerId,
    ) -> Result<Registered, GroupError> {
        let profile = self.distributor_consistent(distributor).await?;
        let profile = profile.ok_or_else(|| GroupError::UnknownDistributor(distributor.clone()))?;
        let bkey = keys::buyer(distributor, user);
        let put = Put::builder()
            .table_name(&self.name)
            .set_item(Some(new_item(
                &bkey,
                "downline_user",
                [("live_orders", n(0)), ("buyer", s(user.as_str()))],
            )))
            .condition_expression("attribute_not_exists(PK)")
            .build()
            .expect("put has item");
        let own = MetricsDelta {
            downline_users: 1,
            downline_users_all: 1,
            ..Default::default()
        };
        let network = MetricsDelta {
            downline_users_all: 1,
            ..Default::default()
        };
        let mut tx = vec![
            TransactWriteItem::builder().put(put).build(),
            TransactWriteItem::builder()
                .update(metrics_update(self, distributor, &own, None))
                .build(),
        ];
        // The ancestors above the upline count the user by pull
        // ([`tier_domain::network`]).
        tx.extend(profile.ancestors.first().map(|a| {
            TransactWriteItem::builder()
                .update(metrics_update(self, a, &network, None))
                .build()
        }));
        let created = match self.transact(tx).await? {
            TxOutcome::Committed => true,
            TxOutcome::ConditionFailed { .. } => false,
        };
        Ok(Registered {
            created,
            ancestors: profile.ancestors,
        })
    }
}
