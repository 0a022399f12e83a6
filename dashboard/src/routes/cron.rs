//! Cron: the registered cron entries with pause, resume and run now.
//!
//! The cron admin API (`Admin::cron_entries` and friends) is not in
//! `spool-client` yet, so the page lists no entries ("no cron table is
//! registered") and the actions answer 404. It is wired once that API lands.

use axum::extract::{Extension, Path};
use axum::response::Response;

use super::{AppState, State};
use crate::error::{AppError, AppResult};
use crate::security::Ctx;
use crate::views::{render, CronPage, CronRow, Layout};

/// The entries to show (none until the cron admin API exists).
pub(crate) async fn entries(_s: &super::Shared, _base: &str) -> AppResult<Vec<CronRow>> {
    Ok(Vec::new())
}

pub(crate) async fn page(
    State(s): AppState,
    Extension(ctx): Extension<Ctx>,
) -> AppResult<Response> {
    let entries = entries(&s, &ctx.base).await?;
    Ok(render(&CronPage {
        l: Layout::new(&ctx, "Cron", "cron"),
        entries,
    }))
}

pub(crate) async fn action(
    State(_s): AppState,
    Extension(_ctx): Extension<Ctx>,
    Path((name, _op)): Path<(String, String)>,
) -> AppResult<Response> {
    Err(AppError::NotFound(format!(
        "no cron entry {:?}: no cron table is registered",
        name.chars().take(100).collect::<String>()
    )))
}
