//! The `tenant_group_pattern` setting: a group name that carries a tenant and a role. Pure.

/// `tenant_group_pattern`: a group name that says "this tenant, this role", such as
/// `mlflow/{tenant}/{role}` (Keycloak's full group paths: `/mlflow/{tenant}/{role}`). Each
/// placeholder stands for one or more characters without `/`; the rest is literal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupPattern {
    pieces: Vec<Piece>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Literal(String),
    Tenant,
    Role,
}

impl GroupPattern {
    /// Parses a pattern with exactly one `{tenant}` and one `{role}`, not next to each other.
    pub fn parse(raw: &str) -> Result<GroupPattern, String> {
        let mut pieces = Vec::new();
        let mut rest = raw;
        while !rest.is_empty() {
            let next = [("{tenant}", Piece::Tenant), ("{role}", Piece::Role)]
                .into_iter()
                .filter_map(|(p, piece)| rest.find(p).map(|i| (i, p.len(), piece)))
                .min_by_key(|(i, _, _)| *i);
            match next {
                Some((i, len, piece)) => {
                    if i > 0 {
                        pieces.push(Piece::Literal(rest[..i].to_string()));
                    }
                    pieces.push(piece);
                    rest = &rest[i + len..];
                }
                None => {
                    pieces.push(Piece::Literal(rest.to_string()));
                    rest = "";
                }
            }
        }
        let count = |p: &Piece| pieces.iter().filter(|x| *x == p).count();
        if count(&Piece::Tenant) != 1 || count(&Piece::Role) != 1 {
            return Err("must contain `{tenant}` and `{role}` exactly once each".into());
        }
        if pieces
            .windows(2)
            .any(|w| !matches!(w[0], Piece::Literal(_)) && !matches!(w[1], Piece::Literal(_)))
        {
            return Err("`{tenant}` and `{role}` must be separated by literal text".into());
        }
        Ok(GroupPattern { pieces })
    }

    /// The tenant and role name a group names, if it fits the pattern.
    pub fn captures<'g>(&self, group: &'g str) -> Option<(&'g str, &'g str)> {
        let (mut tenant, mut role) = (None, None);
        let mut pos = 0;
        for (i, piece) in self.pieces.iter().enumerate() {
            match piece {
                Piece::Literal(l) => {
                    if !group[pos..].starts_with(l.as_str()) {
                        return None;
                    }
                    pos += l.len();
                }
                Piece::Tenant | Piece::Role => {
                    let end = match self.pieces.get(i + 1) {
                        Some(Piece::Literal(l)) => pos + group[pos..].find(l.as_str())?,
                        _ => group.len(),
                    };
                    let value = &group[pos..end];
                    if value.is_empty() || value.contains('/') {
                        return None;
                    }
                    if *piece == Piece::Tenant {
                        tenant = Some(value);
                    } else {
                        role = Some(value);
                    }
                    pos = end;
                }
            }
        }
        (pos == group.len()).then_some((tenant?, role?))
    }
}
