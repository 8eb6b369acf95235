//! The pages behind the login.

use askama::Template;
use axum::extract::State;
use axum::response::Html;

use super::auth::CurrentUser;
use super::{AppState, Lang, WebError};
use crate::config::Queue;
use crate::store::User;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage<'a> {
    lang: Lang,
    user: Option<&'a User>,
    csrf: &'a str,
    queues: Vec<&'a Queue>,
}

/// `GET /`: the queues this user may see (a manager's own, every queue for an admin).
pub(super) async fn home(
    State(state): State<AppState>,
    lang: Lang,
    current: CurrentUser,
) -> Result<Html<String>, WebError> {
    let user = &current.user;
    let queues = state
        .config()
        .queues
        .iter()
        .filter(|q| user.role.sees_queue(&user.queues, &q.name))
        .collect();
    let page = HomePage {
        lang,
        user: Some(user),
        csrf: &current.csrf,
        queues,
    };
    Ok(Html(page.render()?))
}
