//! Describe queries on instances, as the store answers them: ids, region, filters, an order,
//! a page and the total before paging. Dialects translate their own parameters into these
//! (validating values first), so every filter is answered by the store on its indexes and
//! no request reads a whole account.

use crate::instance::{Instance, InstanceState};
use sha2::{Digest, Sha256};

/// Whether `text` matches `pattern`, where `*` matches any run of characters (possibly
/// none) and every other character only itself; case counts.
pub fn wildcard_match(pattern: &str, text: &str) -> bool {
    let parts: Vec<&str> = pattern.split('*').collect();
    if parts.len() == 1 {
        return pattern == text;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !text.starts_with(first) || !text.ends_with(last) || text.len() < first.len() + last.len() {
        return false;
    }
    let mut rest = &text[first.len()..text.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    true
}

/// The stable UUID an instance shows (`Uuid` in CVM answers): version-4 shaped, made from
/// the SHA-256 of its id, in lower-case hyphenated form.
pub fn instance_uuid(id: &str) -> String {
    let digest = Sha256::digest(format!("keyplane-instance-uuid:{id}").as_bytes());
    let mut b = [0u8; 16];
    b.copy_from_slice(&digest[..16]);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(36);
    for (i, byte) in b.iter().enumerate() {
        if matches!(i, 4 | 6 | 8 | 10) {
            out.push('-');
        }
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
    out
}

/// A filter on instances; the values within one filter are alternatives, filters combine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InstanceFilter {
    /// The id is one of these.
    Id(Vec<String>),
    /// The zone is one of these.
    Zone(Vec<String>),
    /// The name is one of these.
    Name(Vec<String>),
    /// The name contains one of these.
    NameContains(Vec<String>),
    /// The name, or the id of an instance without a name, matches this pattern (`*`: any run
    /// of characters, see [`wildcard_match`]).
    DisplayNameLike(String),
    /// The state is one of these.
    State(Vec<InstanceState>),
    /// The private address is one of these.
    PrivateIp(Vec<String>),
    /// The instance type is one of these.
    InstanceType(Vec<String>),
    /// The image is one of these.
    ImageId(Vec<String>),
    /// The instance's [`instance_uuid`] is one of these.
    Uuid(Vec<String>),
    /// Created at or after this time (unix seconds).
    CreatedFrom(i64),
    /// Created at or before this time (unix seconds).
    CreatedUntil(i64),
    /// The first bound key pair (in binding order) is this one.
    FirstKey(String),
    /// No instance passes (a documented filter on something no instance here has).
    Nothing,
}

impl InstanceFilter {
    /// Whether `inst` passes the filter (what the stores answer in their queries).
    pub fn matches(&self, inst: &Instance) -> bool {
        let any = |values: &[String], have: &str| values.iter().any(|v| v == have);
        match self {
            InstanceFilter::Id(v) => any(v, &inst.id),
            InstanceFilter::Zone(v) => any(v, &inst.zone),
            InstanceFilter::Name(v) => any(v, &inst.name),
            InstanceFilter::NameContains(v) => v.iter().any(|s| inst.name.contains(s.as_str())),
            InstanceFilter::DisplayNameLike(p) => {
                let shown = if inst.name.is_empty() {
                    &inst.id
                } else {
                    &inst.name
                };
                wildcard_match(p, shown)
            }
            InstanceFilter::State(v) => v.contains(&inst.state),
            InstanceFilter::PrivateIp(v) => any(v, &inst.private_ip),
            InstanceFilter::InstanceType(v) => any(v, &inst.instance_type),
            InstanceFilter::ImageId(v) => any(v, &inst.image_id),
            InstanceFilter::Uuid(v) => any(v, &instance_uuid(&inst.id)),
            InstanceFilter::CreatedFrom(t) => inst.created_at >= *t,
            InstanceFilter::CreatedUntil(t) => inst.created_at <= *t,
            InstanceFilter::FirstKey(k) => inst.key_ids.first() == Some(k),
            InstanceFilter::Nothing => false,
        }
    }
}

/// The order of an instance page.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum InstanceOrder {
    /// Oldest first, ties by id.
    #[default]
    Oldest,
    /// Newest first, ties by id (ascending).
    Newest,
    /// Newest first, ties by id descending: the exact reverse of [`InstanceOrder::Oldest`].
    NewestReversed,
}

/// A describe query on one account's instances of a namespace.
#[derive(Debug, Clone, Default)]
pub struct InstanceQuery {
    /// Only these ids (when given; unknown ones are left out).
    pub ids: Option<Vec<String>>,
    /// Only this region (when given).
    pub region: Option<String>,
    /// All filters must match.
    pub filters: Vec<InstanceFilter>,
    /// The order of the answer.
    pub order: InstanceOrder,
    /// Rows to skip.
    pub offset: usize,
    /// Rows to return.
    pub limit: usize,
}

impl InstanceQuery {
    /// Whether `inst` is one the query selects (ids, region and filters; not the page).
    pub fn selects(&self, inst: &Instance) -> bool {
        self.ids.as_ref().is_none_or(|ids| ids.contains(&inst.id))
            && self.region.as_ref().is_none_or(|r| *r == inst.region)
            && self.filters.iter().all(|f| f.matches(inst))
    }
}

/// A page of instances with the number of matches before paging.
#[derive(Debug, Clone)]
pub struct InstancePage {
    /// Matches before paging.
    pub total: usize,
    /// The requested page.
    pub items: Vec<Instance>,
}

impl crate::service::Core {
    /// Describe the account's instances of a namespace: ids, region, filters, order and page,
    /// with the total before paging.
    pub async fn describe_instances(
        &self,
        account: &crate::account::Account,
        ns: crate::keypair::Namespace,
        query: &InstanceQuery,
    ) -> Result<InstancePage, crate::DomainError> {
        if query.ids.as_ref().is_some_and(Vec::is_empty)
            || query.filters.contains(&InstanceFilter::Nothing)
        {
            return Ok(InstancePage {
                total: 0,
                items: Vec::new(),
            });
        }
        self.store()
            .query_instances(&account.id, ns, query)
            .await
            .map_err(crate::DomainError::internal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match("web", "web"));
        assert!(!wildcard_match("web", "web1"));
        assert!(wildcard_match("web*", "web1"));
        assert!(wildcard_match("*1", "web1"));
        assert!(wildcard_match("w*b*1", "web1"));
        assert!(wildcard_match("*", ""));
        assert!(
            !wildcard_match("ab*ba", "aba"),
            "prefix and suffix do not overlap"
        );
        assert!(!wildcard_match("W*", "web"), "case counts");
        assert!(wildcard_match("a?[*", "a?[x"), "only `*` is special");
    }

    #[test]
    fn uuids_are_version_4_shaped_and_stable() {
        let u = instance_uuid("ins-abcdefgh");
        assert_eq!(u, instance_uuid("ins-abcdefgh"));
        assert_ne!(u, instance_uuid("ins-abcdefgi"));
        let parts: Vec<&str> = u.split('-').collect();
        assert_eq!(
            parts.iter().map(|p| p.len()).collect::<Vec<_>>(),
            [8, 4, 4, 4, 12]
        );
        assert!(parts[2].starts_with('4'));
        assert!(matches!(&parts[3][..1], "8" | "9" | "a" | "b"));
        assert_eq!(u, u.to_ascii_lowercase());
    }
}
