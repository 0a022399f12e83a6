//! What handlers share ([`Shared`], built once by `routes::router`) and what
//! the middleware hands each request ([`Ctx`]). Kept apart from `routes`,
//! `security` and `views` so each of them depends on this and none on the
//! others' internals.

use std::sync::Arc;

use spool_client::admin::QueueInfo;
use spool_client::Admin;

use crate::csrf::CsrfKey;
use crate::host::HostPolicy;
use crate::DashboardConfig;

/// What every handler shares: read-only after start, so no lock.
pub(crate) struct Shared {
    pub(crate) admin: Admin,
    pub(crate) config: DashboardConfig,
    pub(crate) csrf_key: CsrfKey,
    pub(crate) hosts: HostPolicy,
}

/// Handler state.
pub(crate) type AppState = axum::extract::State<Arc<Shared>>;

/// Per-request facts the pages need, inserted by `security::guard`.
#[derive(Debug, Clone)]
pub(crate) struct Ctx {
    /// Prefix of every link, without trailing slash ("" at the root).
    pub(crate) base: String,
    /// The CSRF token forms carry.
    pub(crate) csrf: String,
    /// Whether actions are hidden and refused.
    pub(crate) read_only: bool,
    /// Who is asking, named in the audit events of the actions taken
    /// (`dashboard:<basic-auth user>`, `dashboard:token`, or `dashboard`
    /// without authentication).
    pub(crate) actor: String,
}

impl Ctx {
    /// The admin API acting as this request's user.
    pub(crate) fn admin(&self, shared: &Admin) -> Admin {
        shared.clone().with_actor(&self.actor)
    }
}

/// The registered queues and the registry members that are not valid queue
/// names (any producer may `SADD` to the registry). The admin API leaves
/// those out of every listing and logs them; pages show them as a warning,
/// so one bad member never takes a page down.
pub(crate) async fn queue_list(
    admin: &Admin,
) -> spool_client::Result<(Vec<QueueInfo>, Vec<String>)> {
    let queues = admin.queues().await?;
    let skipped = admin.invalid_queue_names().await?;
    Ok((queues, skipped))
}
