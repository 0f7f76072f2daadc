//! The core's connection table.
//!
//! A vector indexed by the low 32 bits of a [`ConnId`], which the shell hands out densely
//! (its own slot for the socket), so a lookup is an index and a compare. A hash map would
//! spread its entries over a table up to twice the entries' size and touch every page of
//! it; here memory grows with the highest slot in use, and a vector's spare capacity is
//! never touched, so it costs no resident memory.

use super::Conn;
use crate::watch::ConnId;

#[derive(Default)]
pub(crate) struct ConnTable {
    slots: Vec<Option<Conn>>,
    len: usize,
}

fn index(id: ConnId) -> usize {
    (id.0 & u64::from(u32::MAX)) as usize
}

impl ConnTable {
    /// Stores `conn` in its slot and returns whichever connection held the slot before: a
    /// shell that reuses a slot tells the core the old connection closed first, so that is
    /// only ever `None` unless the shell is wrong.
    pub(crate) fn insert(&mut self, conn: Conn) -> Option<Conn> {
        let i = index(conn.id);
        if i >= self.slots.len() {
            self.slots.resize_with(i + 1, || None);
        }
        let old = self.slots[i].replace(conn);
        if old.is_none() {
            self.len += 1;
        }
        old
    }

    pub(crate) fn get(&self, id: ConnId) -> Option<&Conn> {
        self.slots.get(index(id))?.as_ref().filter(|c| c.id == id)
    }

    pub(crate) fn get_mut(&mut self, id: ConnId) -> Option<&mut Conn> {
        self.slots
            .get_mut(index(id))?
            .as_mut()
            .filter(|c| c.id == id)
    }

    pub(crate) fn contains(&self, id: ConnId) -> bool {
        self.get(id).is_some()
    }

    pub(crate) fn remove(&mut self, id: ConnId) -> Option<Conn> {
        let slot = self.slots.get_mut(index(id))?;
        if slot.as_ref().is_some_and(|c| c.id == id) {
            self.len -= 1;
            let conn = slot.take();
            // Give back the tail once the highest slots are free, so a storm that is over
            // does not keep its table.
            while self.slots.last().is_some_and(Option::is_none) {
                self.slots.pop();
            }
            if self.slots.len() < self.slots.capacity() / 4 {
                self.slots.shrink_to(self.slots.len() * 2);
            }
            conn
        } else {
            None
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.len
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Conn> {
        self.slots.iter().flatten()
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut Conn> {
        self.slots.iter_mut().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn conn(id: u64) -> Conn {
        Conn::new(
            ConnId(id),
            "127.0.0.1:1".parse().expect("address"),
            super::super::Now {
                mono_ms: 0,
                wall_ms: 0,
            },
        )
    }

    #[test]
    fn a_connection_record_stays_small() {
        // One per connection: a hundred thousand idle sessions pay for every byte.
        let size = std::mem::size_of::<Option<Conn>>();
        assert!(size <= 168, "the connection record grew to {size} bytes");
    }

    #[test]
    fn an_id_from_an_earlier_use_of_the_slot_finds_nothing() {
        let mut t = ConnTable::default();
        let old = ConnId(1 << 32 | 5);
        let new = ConnId(2 << 32 | 5);
        assert!(t.insert(conn(old.0)).is_none());
        assert!(t.remove(old).is_some());
        assert!(t.insert(conn(new.0)).is_none());
        assert!(t.get(old).is_none());
        assert!(t.remove(old).is_none());
        assert_eq!(t.get(new).map(|c| c.id), Some(new));
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn freeing_the_highest_slots_gives_the_tail_back() {
        let mut t = ConnTable::default();
        for i in 0..1000 {
            t.insert(conn(1 << 32 | i));
        }
        for i in (10..1000).rev() {
            assert!(t.remove(ConnId(1 << 32 | i)).is_some());
        }
        assert_eq!(t.len(), 10);
        assert_eq!(t.values().count(), 10);
        assert!(t.slots.capacity() < 100);
        // A hole below the highest slot stays, and is found again.
        assert!(t.remove(ConnId(1 << 32 | 3)).is_some());
        assert_eq!(t.slots.len(), 10);
        assert!(t.get(ConnId(1 << 32 | 9)).is_some());
    }
}
