//! A branch handed to a login role of its own. An agent's branch on the
//! source's server is confined by giving every object in it to one new role
//! (so the agent's credentials reach nothing else), which rewrites each
//! object's owner and the owner's entries in its privileges. That hand-over is
//! how the branch was made, not something the branch did: before comparing,
//! the child's objects owned by the stand-in role get back their parent
//! counterpart's owner, in `owner` and inside `privileges`. Objects the branch
//! added keep the stand-in as owner: nothing on the parent says otherwise.

use std::collections::HashMap;

use super::read::{ObjKind, Object};

/// Restores the parent's owners on the child's objects owned by `role`.
pub fn apply(parent: &[Object], child: &mut [Object], role: &str) {
    let by_identity: HashMap<(ObjKind, (u32, i16)), &Object> =
        parent.iter().filter_map(|o| o.identity.map(|id| ((o.kind, id), o))).collect();
    let by_name: HashMap<(ObjKind, &str), &Object> = parent.iter().map(|o| ((o.kind, o.name.as_str()), o)).collect();
    let owners: HashMap<&str, &str> =
        parent.iter().filter_map(|o| o.attrs.get("owner").map(|w| (o.name.as_str(), w.as_str()))).collect();
    for c in child.iter_mut() {
        let twin = c
            .identity
            .and_then(|id| by_identity.get(&(c.kind, id)))
            .or_else(|| by_name.get(&(c.kind, c.name.as_str())));
        let Some(p) = twin else { continue };
        // A column's privileges are granted by its table's owner.
        let owner = p
            .attrs
            .get("owner")
            .map(String::as_str)
            .or_else(|| p.parent.as_deref().and_then(|t| owners.get(t).copied()));
        let Some(owner) = owner else { continue };
        if c.attrs.get("owner").map(String::as_str) == Some(role) {
            c.attrs.insert("owner".into(), owner.to_string());
        }
        if let Some(acl) = c.attrs.get_mut("privileges") {
            *acl = rename_in_acl(acl, role, owner);
        }
    }
}

/// `acl` (an `aclitem[]` as text) with role `from` as grantee or grantor replaced by `to`.
fn rename_in_acl(acl: &str, from: &str, to: &str) -> String {
    let (open, close) = (acl.starts_with('{'), acl.ends_with('}'));
    if !open || !close || acl.len() < 2 {
        return acl.to_string();
    }
    let to = acl_name(to);
    let items: Vec<String> = acl[1..acl.len() - 1]
        .split(',')
        .map(|item| {
            let Some((grantee, rest)) = item.split_once('=') else { return item.to_string() };
            let Some((privs, grantor)) = rest.rsplit_once('/') else { return item.to_string() };
            let swap = |n: &str| if n == from { to.clone() } else { n.to_string() };
            format!("{}={privs}/{}", swap(grantee), swap(grantor))
        })
        .collect();
    format!("{{{}}}", items.join(","))
}

/// A role name as `aclitem` prints it: quoted unless every byte is alphanumeric or `_`.
fn acl_name(name: &str) -> String {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
        name.to_string()
    } else {
        format!("\"{}\"", name.replace('"', "\"\""))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stand_in_is_renamed_as_grantee_and_grantor_only() {
        let acl = "{agent_b=arwdDxt/agent_b,reader=r/agent_b,agent_bx=r/agent_b}";
        assert_eq!(rename_in_acl(acl, "agent_b", "app"), "{app=arwdDxt/app,reader=r/app,agent_bx=r/app}");
        assert_eq!(
            rename_in_acl(acl, "agent_b", "App Owner"),
            "{\"App Owner\"=arwdDxt/\"App Owner\",reader=r/\"App Owner\",agent_bx=r/\"App Owner\"}"
        );
        assert_eq!(rename_in_acl("{=U/agent_b}", "agent_b", "app"), "{=U/app}");
    }
}
