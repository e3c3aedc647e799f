//! Grants as MLflow stores them: one tag per subject on the object it is about (an
//! experiment, a registered model or a prompt), so a grant lives and dies with its object, is
//! backed up with MLflow's data, and arrives with the ownership fact the gateway reads anyway.
//! The key is `<tenant tag key>.grant.<digest of the subject>` (one tag per subject: a change
//! is one tag write, never a read-modify-write of a shared list), the value `<LEVEL> <subject>`.
//! These tags are the gateway's own: no client may set or delete them (`mlflow::tags::guard`),
//! only the grants endpoint does. What a grant allows is `policy::access`.

use super::tags::tenant_of;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// What a grant gives on its object (and the object's children): a level, or a veto.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum GrantLevel {
    #[serde(rename = "READ")]
    Read,
    #[serde(rename = "EDIT")]
    Edit,
    #[serde(rename = "MANAGE")]
    Manage,
    /// A veto over every other grant and over the tenant role.
    #[serde(rename = "DENY")]
    Deny,
}

impl GrantLevel {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantLevel::Read => "READ",
            GrantLevel::Edit => "EDIT",
            GrantLevel::Manage => "MANAGE",
            GrantLevel::Deny => "DENY",
        }
    }

    pub fn parse(s: &str) -> Option<GrantLevel> {
        match s {
            "READ" => Some(GrantLevel::Read),
            "EDIT" => Some(GrantLevel::Edit),
            "MANAGE" => Some(GrantLevel::Manage),
            "DENY" => Some(GrantLevel::Deny),
            _ => None,
        }
    }
}

/// One grant: `subject` (`user:<subject>`, `group:<group>` or `tenant:<tenant>`) gets `level`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grant {
    #[serde(rename = "s")]
    pub subject: String,
    #[serde(rename = "l")]
    pub level: GrantLevel,
}

/// The kinds of grant subject.
pub const SUBJECT_KINDS: &[&str] = &["user:", "group:", "tenant:"];

/// Whether `subject` is a grant subject: a known kind and a printable name of 1-256 characters
/// (a tenant's name as tenant ids are checked).
pub fn valid_subject(subject: &str) -> bool {
    let Some(kind) = SUBJECT_KINDS.iter().find(|k| subject.starts_with(**k)) else {
        return false;
    };
    let name = &subject[kind.len()..];
    if *kind == "tenant:" {
        return crate::vocab::names::valid_tenant(name);
    }
    !name.is_empty() && name.len() <= 256 && !name.chars().any(char::is_control)
}

/// The tag prefix every grant tag of `tenant_key` starts with.
pub fn prefix(tenant_key: &str) -> String {
    format!("{tenant_key}.grant.")
}

/// The tag key of `subject`'s grant.
pub fn tag_key(tenant_key: &str, subject: &str) -> String {
    let digest = Sha256::digest(subject.as_bytes());
    format!(
        "{}{}",
        prefix(tenant_key),
        crate::vocab::names::hex(&digest[..12])
    )
}

/// The tag value of a grant.
pub fn tag_value(g: &Grant) -> String {
    format!("{} {}", g.level.as_str(), g.subject)
}

/// The grant a tag holds, if it is a well-formed grant tag of `tenant_key` (its key the digest
/// of the subject in its value: anything else is ignored).
pub fn parse_tag(tenant_key: &str, key: &str, value: &str) -> Option<Grant> {
    if !key.starts_with(&prefix(tenant_key)) {
        return None;
    }
    let (level, subject) = value.split_once(' ')?;
    let g = Grant {
        subject: subject.to_string(),
        level: GrantLevel::parse(level)?,
    };
    (valid_subject(&g.subject) && tag_key(tenant_key, &g.subject) == key).then_some(g)
}

/// Every grant in an MLflow tag list (`[{"key": …, "value": …}, …]`), in order.
pub fn grants_of(tags: Option<&Value>, tenant_key: &str) -> Vec<Grant> {
    let Some(list) = tags.and_then(Value::as_array) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|t| {
            parse_tag(
                tenant_key,
                t.get("key")?.as_str()?,
                t.get("value")?.as_str()?,
            )
        })
        .collect()
}

/// Who reads a search answer, as far as its rows' tags decide: the rows of `tenant` that the
/// reader may see. A member sees every row of its tenant but those a grant to one of its
/// subjects denies; a visitor (no role in `tenant`) only rows a grant to one of its subjects
/// shares with it. `keys` are the grant tag keys of the reader's subjects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reader {
    pub tenant: String,
    pub tenant_key: String,
    pub member: bool,
    pub keys: Vec<String>,
}

impl Reader {
    /// Whether a row with these tags (key, value pairs, in order) is visible.
    pub fn sees<'t>(&self, tags: impl IntoIterator<Item = (&'t str, &'t str)>) -> bool {
        let (mut tenant, mut denied, mut shared) = (None, false, false);
        for (k, v) in tags {
            if k == self.tenant_key {
                tenant.get_or_insert(v);
            } else if self.keys.iter().any(|mine| mine == k) {
                match parse_tag(&self.tenant_key, k, v).map(|g| g.level) {
                    Some(GrantLevel::Deny) => denied = true,
                    Some(_) => shared = true,
                    None => {}
                }
            }
        }
        tenant == Some(self.tenant.as_str()) && !denied && (self.member || shared)
    }

    /// `sees` for an MLflow tag list.
    pub fn sees_tags(&self, tags: Option<&Value>) -> bool {
        let pairs = tags
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|t| Some((t.get("key")?.as_str()?, t.get("value")?.as_str()?)));
        // The tenant tag as `tags::tenant_of` reads it (first with a string value).
        tenant_of(tags, &self.tenant_key).as_deref() == Some(self.tenant.as_str())
            && self.sees(pairs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tag(g: &Grant) -> Value {
        json!({"key": tag_key("tenant", &g.subject), "value": tag_value(g)})
    }

    #[test]
    fn grant_tags_round_trip_and_tampered_ones_are_ignored() {
        let g = Grant {
            subject: "user:alice@example.com".into(),
            level: GrantLevel::Read,
        };
        let key = tag_key("tenant", &g.subject);
        assert!(key.starts_with("tenant.grant.") && key.len() == "tenant.grant.".len() + 24);
        assert_eq!(parse_tag("tenant", &key, &tag_value(&g)), Some(g.clone()));
        // Another subject's value under this key, another prefix, a bad level: ignored.
        assert_eq!(parse_tag("tenant", &key, "READ user:mallory"), None);
        assert_eq!(parse_tag("owner", &key, &tag_value(&g)), None);
        assert_eq!(
            parse_tag("tenant", &key, "ALL user:alice@example.com"),
            None
        );
        let tags = json!([{"key": "tenant", "value": "a"}, tag(&g), {"key": "x", "value": "y"}]);
        assert_eq!(grants_of(Some(&tags), "tenant"), vec![g]);
    }

    #[test]
    fn subjects_are_of_a_known_kind() {
        for ok in ["user:alice", "group:/mlflow/ops", "tenant:team-b"] {
            assert!(valid_subject(ok), "{ok}");
        }
        for bad in [
            "alice",
            "user:",
            "tenant:Team B",
            "role:admin",
            "group:a\nb",
        ] {
            assert!(!valid_subject(bad), "{bad}");
        }
    }

    #[test]
    fn members_see_all_but_denied_rows_and_visitors_only_shared_ones() {
        let deny = Grant {
            subject: "user:alice".into(),
            level: GrantLevel::Deny,
        };
        let share = Grant {
            subject: "tenant:team-b".into(),
            level: GrantLevel::Read,
        };
        let row = |grants: &[&Grant]| {
            let mut t = vec![json!({"key": "tenant", "value": "team-a"})];
            t.extend(grants.iter().map(|g| tag(g)));
            Value::Array(t)
        };
        let member = Reader {
            tenant: "team-a".into(),
            tenant_key: "tenant".into(),
            member: true,
            keys: vec![tag_key("tenant", "user:alice")],
        };
        assert!(member.sees_tags(Some(&row(&[]))));
        assert!(!member.sees_tags(Some(&row(&[&deny]))));
        assert!(member.sees_tags(Some(&row(&[&share]))));
        let visitor = Reader {
            member: false,
            keys: vec![
                tag_key("tenant", "user:bob"),
                tag_key("tenant", "tenant:team-b"),
            ],
            ..member.clone()
        };
        assert!(!visitor.sees_tags(Some(&row(&[]))));
        assert!(visitor.sees_tags(Some(&row(&[&share]))));
        // Another tenant's row is never seen.
        let foreign = json!([{"key": "tenant", "value": "team-c"}, tag(&share)]);
        assert!(!visitor.sees_tags(Some(&foreign)));
        assert!(!member.sees_tags(None));
    }
}
