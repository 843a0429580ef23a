//! The console's pages, rendered on the server: they show the current state with scripts
//! off; `console.js` only keeps the tables up to date.

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

/// The signed-in page of `account`.
pub fn dashboard(account: &ConsoleAccount, v: &View) -> String {
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
    audit(&mut h);
    h.raw("</main></body></html>\n");
    h.finish()
}

/// The place of the audit trail, which Keyplane does not record yet.
fn audit(h: &mut Html) {
    h.raw("<section id=\"audit\"><h2>Audit trail</h2>")
        .raw("<p class=\"notice\" id=\"audit-not-recorded\"><strong>Not recorded yet.</strong> ")
        .raw("Keyplane does not keep an audit trail of changes yet, so there are no events to ")
        .raw("show. When it does, they appear here, with these filters.</p>")
        .raw("<form class=\"filters\" aria-disabled=\"true\"><fieldset disabled>")
        .raw("<label>Action <input name=\"action\" placeholder=\"AssociateInstancesKeyPairs\">")
        .raw("</label> <label>Resource <input name=\"resource\" placeholder=\"ins-…, skey-…\">")
        .raw("</label> <label>From <input name=\"from\" type=\"datetime-local\"></label> ")
        .raw("<label>To <input name=\"to\" type=\"datetime-local\"></label> ")
        .raw("<button type=\"submit\">Filter</button></fieldset></form></section>");
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
