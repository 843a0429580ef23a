//! The console's pages, rendered on the server: they show the current state with scripts
//! off; `console.js` only keeps the tables up to date.

use super::audit::AuditFilter;
use super::html::Html;
use super::view::{Table, View};
use keyplane_core::store::ConsoleAccount;

fn head(h: &mut Html, title: &str) {
    h.raw("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">")
        .raw("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">")
        .raw("<meta name=\"referrer\" content=\"no-referrer\">")
        .raw("<title>")
        .text(title)
        .raw("</title><link rel=\"stylesheet\" href=\"/console/assets/console.css\">");
}

fn table(h: &mut Html, id: &'static str, t: &Table) {
    h.raw("<table id=\"").raw(id).raw("\"><thead><tr>");
    for head in t.heads {
        h.elem("th", None, head);
    }
    h.raw("</tr></thead><tbody data-empty=\"")
        .text(t.empty)
        .raw("\" data-columns=\"")
        .text(&t.heads.len().to_string())
        .raw("\">");
    if t.rows.is_empty() {
        h.raw("<tr class=\"empty\"><td colspan=\"")
            .text(&t.heads.len().to_string())
            .raw("\">")
            .text(t.empty)
            .raw("</td></tr>");
    }
    for row in &t.rows {
        h.raw("<tr>");
        for c in row {
            h.elem("td", c.class.as_deref(), &c.text);
        }
        h.raw("</tr>");
    }
    h.raw("</tbody></table>");
}

/// The signed-in page of `account`, its audit trail filtered by `filter`.
pub fn dashboard(account: &ConsoleAccount, v: &View, filter: &AuditFilter) -> String {
    let mut h = Html::default();
    head(&mut h, &format!("Keyplane console: {}", account.name));
    // Without scripts the page reloads itself to stay current.
    h.raw("<noscript><meta http-equiv=\"refresh\" content=\"10\"></noscript>")
        .raw("<script src=\"/console/assets/console.js\" defer></script></head><body>")
        .raw("<header><h1>Keyplane console</h1><p class=\"who\">Account <strong id=\"account\">")
        .text(&account.name)
        .raw("</strong> (")
        .text(&account.id)
        .raw(")</p><form method=\"post\" action=\"/console/logout\">")
        .raw("<button type=\"submit\">Sign out</button></form></header>")
        .raw("<nav><a href=\"#instances\">Instances</a> <a href=\"#key-pairs\">Key pairs</a> ")
        .raw("<a href=\"#agents\">Agents</a> <a href=\"#audit\">Audit trail</a></nav><main>")
        .raw("<p class=\"status\">As of <span id=\"as-of\">")
        .text(&v.as_of)
        .raw("</span> <span id=\"live\">(reloads every 10 s)</span></p>");
    h.raw("<section id=\"instances\"><h2>Instances</h2>");
    table(&mut h, "instances-table", &v.instances);
    h.raw("</section><section id=\"key-pairs\"><h2>Key pairs</h2>");
    table(&mut h, "key-pairs-table", &v.key_pairs);
    h.raw("</section><section id=\"agents\"><h2>Agents</h2>")
        .raw("<p class=\"note\">The guest agent of each sandbox instance and of each host ")
        .raw("registered with <code>keyplane agent</code>: the SSH state it has applied, and ")
        .raw("when it last asked the server for it.</p>");
    table(&mut h, "agents-table", &v.agents);
    h.raw("</section>");
    audit(&mut h, &v.audit, filter);
    h.raw("</main></body></html>\n");
    h.finish()
}

fn input(
    h: &mut Html,
    label: &str,
    name: &'static str,
    kind: &'static str,
    value: &str,
    hint: &str,
) {
    h.raw("<label>")
        .text(label)
        .raw(" <input name=\"")
        .raw(name)
        .raw("\" type=\"")
        .raw(kind)
        .raw("\" value=\"")
        .text(value)
        .raw("\" placeholder=\"")
        .text(hint)
        .raw("\"></label> ");
}

/// The audit trail: the newest events of the account that match the filters.
fn audit(h: &mut Html, events: &Table, f: &AuditFilter) {
    h.raw("<section id=\"audit\"><h2>Audit trail</h2>")
        .raw("<p class=\"note\">Every change and every refused request of this account, ")
        .raw("newest first (the latest ")
        .text(&super::audit::SHOWN.to_string())
        .raw(" that match). The same events answer CloudAudit <code>LookUpEvents</code>, ")
        .raw("ActionTrail <code>LookupEvents</code> and <code>keyplane events</code>.</p>")
        .raw("<form class=\"filters\" id=\"audit-filters\" method=\"get\" action=\"/console/#audit\">");
    input(
        h,
        "Action",
        "action",
        "text",
        &f.action,
        "AssociateInstancesKeyPairs",
    );
    input(
        h,
        "Resource",
        "resource",
        "text",
        &f.resource,
        "ins-…, skey-…, a key name",
    );
    input(h, "Request id", "request", "text", &f.request_id, "");
    h.raw("<label>Outcome <select name=\"outcome\">");
    for (value, label) in [
        ("", "any"),
        ("accepted", "accepted"),
        ("refused", "refused"),
    ] {
        h.raw("<option value=\"").raw(value).raw("\"");
        if f.outcome == value {
            h.raw(" selected");
        }
        h.raw(">").text(label).raw("</option>");
    }
    h.raw("</select></label> ");
    input(h, "From (UTC)", "from", "datetime-local", &f.from, "");
    input(h, "To (UTC)", "to", "datetime-local", &f.to, "");
    h.raw("<button type=\"submit\">Filter</button> <a href=\"/console/#audit\">Clear</a></form>");
    if let Some(problem) = f.problem() {
        h.raw("<p class=\"notice\" id=\"audit-problem\">")
            .text(&problem)
            .raw("</p>");
    }
    table(h, "audit-table", events);
    h.raw("</section>");
}

/// The page shown without a session: nothing of any account.
pub fn signed_out() -> String {
    message(
        "Not signed in",
        "Ask for a login link with: keyplane console login-url --account NAME",
    )
}

/// The page shown for a login link that is unknown, used or expired.
pub fn login_refused() -> String {
    message(
        "This login link does not work",
        "It is unknown, was already used, or has expired (links last 10 minutes and work \
         once). Ask for a new one with: keyplane console login-url --account NAME",
    )
}

/// A page of one message.
pub fn message(title: &str, body: &str) -> String {
    let mut h = Html::default();
    head(&mut h, &format!("Keyplane console: {title}"));
    h.raw("</head><body><header><h1>Keyplane console</h1></header><main><h2 id=\"message\">")
        .text(title)
        .raw("</h2><p>")
        .text(body)
        .raw("</p></main></body></html>\n");
    h.finish()
}
