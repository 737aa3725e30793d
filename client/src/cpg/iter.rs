//! Iterating the daemon's group view (corosync's `cpg_iteration_*`): the daemon takes a
//! snapshot at initialize, and every [`Iterator::next`] is one round trip for one item.
//! Dropping the iteration early finalizes it on the daemon (best effort).

use core::marker::PhantomData;

use services::GroupName;
use services::cpg::wire::{Member, Request, RequestCode, ResponseBody};
use totem_proto::NodeId;

use super::Cpg;
use crate::Error;

/// An open iteration over groups ([`Cpg::iter_groups`]), one group's members
/// ([`Cpg::iter_members`]) or every (group, member) pair ([`Cpg::iter_all`]). Yields
/// `Result<T, Error>`; after the first error it yields nothing more.
#[derive(Debug)]
pub struct Iteration<'a, T> {
    cpg: &'a mut Cpg,
    /// The daemon's handle, while the iteration is open.
    handle: Option<u32>,
    _item: PhantomData<fn() -> T>,
}

impl<'a, T> Iteration<'a, T> {
    pub(crate) fn new(cpg: &'a mut Cpg, handle: u32) -> Self {
        Self {
            cpg,
            handle: Some(handle),
            _item: PhantomData,
        }
    }

    /// The next raw item `(group, node id or 0, pid or 0)`, or `None` at the end.
    fn next_raw(&mut self) -> Option<Result<(GroupName, u32, u32), Error>> {
        let handle = self.handle?;
        let reply = self.cpg.call(
            &Request::IterationNext { handle }.emit(),
            RequestCode::IterationNext,
        );
        match reply {
            Ok(ResponseBody::IterationItem { group, node, pid }) => Some(Ok((group, node, pid))),
            Ok(_) => {
                self.close();
                Some(Err(Error::Protocol("iteration reply without an item")))
            }
            Err(Error::NoSections) => {
                self.close();
                None
            }
            Err(e) => {
                self.close();
                Some(Err(e))
            }
        }
    }

    /// Finalizes the iteration on the daemon (ignoring errors: the daemon also frees it
    /// when the connection ends).
    fn close(&mut self) {
        if let Some(handle) = self.handle.take() {
            let _ = self.cpg.call(
                &Request::IterationFinalize { handle }.emit(),
                RequestCode::IterationFinalize,
            );
        }
    }
}

impl<T> Drop for Iteration<'_, T> {
    fn drop(&mut self) {
        self.close();
    }
}

impl Iterator for Iteration<'_, GroupName> {
    type Item = Result<GroupName, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_raw().map(|r| r.map(|(group, _, _)| group))
    }
}

impl Iterator for Iteration<'_, Member> {
    type Item = Result<Member, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_raw()
            .map(|r| r.map(|(_, node, pid)| Member::new(NodeId(node), pid)))
    }
}

impl Iterator for Iteration<'_, (GroupName, Member)> {
    type Item = Result<(GroupName, Member), Error>;

    fn next(&mut self) -> Option<Self::Item> {
        self.next_raw()
            .map(|r| r.map(|(group, node, pid)| (group, Member::new(NodeId(node), pid))))
    }
}
