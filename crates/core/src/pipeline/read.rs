//! Requests answered from the tree as it is: reads, watch management, whoAmI, sync.

use oxkeeper_proto::codes::{add_watch_mode, watcher_type};
use oxkeeper_proto::request::ReadOp;
use oxkeeper_proto::{perms, ClientInfo, ErrorCode, MultiResult, Request, Response};

use super::{acl, Core};
use crate::session::SessionId;
use crate::watch::ConnId;

impl Core {
    fn check_read(
        &self,
        node_acl: &[oxkeeper_proto::Acl],
        perm: i32,
        ids: &acl::Identities,
    ) -> Result<(), ErrorCode> {
        acl::check(node_acl, perm, ids, self.config.skip_acl)
    }

    pub(super) fn read(
        &mut self,
        conn: ConnId,
        sid: SessionId,
        ids: &acl::Identities,
        req: Request,
    ) -> Result<Response, ErrorCode> {
        match req {
            Request::Exists(r) => {
                if r.path.contains('\0') {
                    return Err(ErrorCode::BadArguments);
                }
                if let Some(node) = self.tree.get(&r.path) {
                    self.check_read(node.acl(), perms::READ, ids)?;
                }
                if r.watch {
                    self.watches.add_data_watch(conn, &r.path);
                }
                let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                Ok(Response::Stat(node.stat()))
            }
            Request::GetData(r) => {
                let (data, stat) = self.get_data(&r.path, ids)?;
                if r.watch {
                    self.watches.add_data_watch(conn, &r.path);
                }
                Ok(Response::GetData(data, stat))
            }
            Request::GetChildren(r) => {
                let children = self.get_children(&r.path, ids)?;
                if r.watch {
                    self.watches.add_child_watch(conn, &r.path);
                }
                Ok(Response::GetChildren(children))
            }
            Request::GetChildren2(r) => {
                let children = self.get_children(&r.path, ids)?;
                if r.watch {
                    self.watches.add_child_watch(conn, &r.path);
                }
                let stat = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?.stat();
                Ok(Response::GetChildren2(children, stat))
            }
            Request::GetAcl(r) => {
                let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                self.check_read(node.acl(), acl::READ_OR_ADMIN, ids)?;
                let list = if acl::allowed(node.acl(), perms::ADMIN, ids, self.config.skip_acl) {
                    node.acl().to_vec()
                } else {
                    acl::mask_digests(node.acl())
                };
                Ok(Response::GetAcl(list, node.stat()))
            }
            Request::Sync(r) => Ok(Response::Path(r.path)),
            Request::GetAllChildrenNumber(r) => {
                let node = self.tree.get(&r.path).ok_or(ErrorCode::NoNode)?;
                self.check_read(node.acl(), perms::READ, ids)?;
                Ok(Response::Count(self.tree.count_descendants(&r.path) as i32))
            }
            Request::GetEphemerals(r) => {
                let prefix = r.path.trim();
                let mut paths: Vec<String> = self
                    .tree
                    .ephemerals(sid.0)
                    .into_iter()
                    .filter(|p| prefix.is_empty() || prefix == "/" || p.starts_with(prefix))
                    .collect();
                paths.sort();
                Ok(Response::PathList(paths))
            }
            Request::WhoAmI => Ok(Response::WhoAmI(
                ids.to_ids()
                    .iter()
                    .map(|id| ClientInfo {
                        auth_scheme: id.scheme.clone(),
                        user: match id.scheme.as_str() {
                            "digest" => id.id.split(':').next().unwrap_or("").to_owned(),
                            _ => id.id.clone(),
                        },
                    })
                    .collect(),
            )),
            Request::MultiRead(ops) => {
                let results = ops
                    .into_iter()
                    .map(|op| match op {
                        ReadOp::GetData(r) => match self.get_data(&r.path, ids) {
                            Ok((data, stat)) => MultiResult::GetData(data, stat),
                            Err(e) => MultiResult::Error(e.code()),
                        },
                        ReadOp::GetChildren(r) => match self.get_children(&r.path, ids) {
                            Ok(children) => MultiResult::GetChildren(children),
                            Err(e) => MultiResult::Error(e.code()),
                        },
                    })
                    .collect();
                Ok(Response::Multi(results))
            }
            Request::CheckWatches(r) => {
                if !(watcher_type::CHILDREN..=watcher_type::PERSISTENT_RECURSIVE)
                    .contains(&r.watch_type)
                {
                    return Err(ErrorCode::MarshallingError);
                }
                if self.watches.check_watches(conn, &r.path, r.watch_type) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::RemoveWatches(r) => {
                if !(watcher_type::CHILDREN..=watcher_type::PERSISTENT_RECURSIVE)
                    .contains(&r.watch_type)
                {
                    return Err(ErrorCode::MarshallingError);
                }
                if self.watches.remove_watches(conn, &r.path, r.watch_type) {
                    Ok(Response::Empty)
                } else {
                    Err(ErrorCode::NoWatcher)
                }
            }
            Request::AddWatch(r) => {
                if r.mode != add_watch_mode::PERSISTENT
                    && r.mode != add_watch_mode::PERSISTENT_RECURSIVE
                {
                    return Err(ErrorCode::MarshallingError);
                }
                self.watches.add_watch(conn, &r.path, r.mode);
                Ok(Response::AddWatch)
            }
            Request::SetWatches { req, .. } => {
                let events = self.watches.set_watches(conn, &req, &self.tree);
                for (event_type, path) in events {
                    oxkeeper_proto::response::write_notification(
                        self.out.buf(conn),
                        -1,
                        event_type,
                        &path,
                    );
                    self.stats.packets_sent += 1;
                }
                Ok(Response::Empty)
            }
            other => {
                tracing::error!(request = ?other.opcode(), "request reached the read path by mistake");
                Err(ErrorCode::Unimplemented)
            }
        }
    }

    fn get_data(
        &self,
        path: &str,
        ids: &acl::Identities,
    ) -> Result<(Option<bytes::Bytes>, oxkeeper_proto::Stat), ErrorCode> {
        let node = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
        self.check_read(node.acl(), perms::READ, ids)?;
        Ok((node.data().clone(), node.stat()))
    }

    fn get_children(&self, path: &str, ids: &acl::Identities) -> Result<Vec<String>, ErrorCode> {
        let node = self.tree.get(path).ok_or(ErrorCode::NoNode)?;
        self.check_read(node.acl(), perms::READ, ids)?;
        Ok(self.tree.children(path))
    }
}
