//! Session passwords, bit-for-bit as ZooKeeper's `generatePasswd`.
//!
//! The password is a pure function of the session id, so nothing is stored and any
//! server can check it. Clients keep their password across server restarts and may
//! present it to any member of a mixed or migrated ensemble, which is why this must
//! reproduce `java.util.Random` exactly rather than use a better generator. It is a
//! checksum, not a secret.

use super::tracker::SessionId;

/// Length of a session password on the wire.
pub const PASSWORD_LEN: usize = 16;

/// ZooKeeper's `superSecret`, XOR-ed into the id to seed the generator.
const SUPER_SECRET: i64 = 0xB341_5C00;

/// The password ZooKeeper hands out for `id`:
/// `new java.util.Random(id ^ 0xB3415C00).nextBytes(new byte[16])`.
pub fn password(id: SessionId) -> [u8; PASSWORD_LEN] {
    let mut out = [0u8; PASSWORD_LEN];
    JavaRandom::new(id.0 ^ SUPER_SECRET).next_bytes(&mut out);
    out
}

/// ZooKeeper's `checkPasswd`: id 0 means "no session" and never matches; otherwise the
/// presented bytes must equal the generated password, length included.
pub fn check_password(id: SessionId, presented: &[u8]) -> bool {
    if id.0 == 0 || presented.len() != PASSWORD_LEN {
        return false;
    }
    // Compared without an early exit so response timing does not reveal how many
    // leading bytes were right.
    password(id)
        .iter()
        .zip(presented)
        .fold(0u8, |acc, (a, b)| acc | (a ^ b))
        == 0
}

/// The 48-bit linear congruential generator specified for `java.util.Random`.
#[derive(Debug, Clone)]
struct JavaRandom {
    seed: u64,
}

impl JavaRandom {
    const MULTIPLIER: u64 = 0x5_DEEC_E66D;
    const ADDEND: u64 = 0xB;
    const MASK: u64 = (1 << 48) - 1;

    /// `new Random(seed)`, including the constructor's scrambling of the seed.
    fn new(seed: i64) -> Self {
        // Reinterpreting the two's-complement bits is what Java's long arithmetic does.
        Self {
            seed: (seed as u64 ^ Self::MULTIPLIER) & Self::MASK,
        }
    }

    /// `next(32)` as returned by `nextInt()`.
    fn next_int(&mut self) -> i32 {
        self.seed = self
            .seed
            .wrapping_mul(Self::MULTIPLIER)
            .wrapping_add(Self::ADDEND)
            & Self::MASK;
        // The top 32 of the 48 state bits, reinterpreted as Java's signed int.
        (self.seed >> 16) as u32 as i32
    }

    /// `nextBytes`: each `nextInt()` supplies up to four bytes, least significant first.
    fn next_bytes(&mut self, buf: &mut [u8]) {
        for chunk in buf.chunks_mut(4) {
            let bytes = self.next_int().to_le_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(bytes: &[u8]) -> String {
        bytes.iter().map(|b| format!("{b:02x}")).collect()
    }

    /// Produced by `java.util.Random` on OpenJDK 17 with ZooKeeper's expression
    /// `new Random(id ^ 0xB3415C00L).nextBytes(new byte[16])`.
    const JAVA_VECTORS: &[(i64, &str)] = &[
        (0x0100_0000_0000_0000, "f22acd4a97e69d6d20a49bb638eadb38"),
        (0x0100_0a3b_2c4d_0000, "a956a98c82ed56462fb83e649bee242b"),
        (0x0300_075b_cd15_0001, "b4e9c127ba8f3112dc69967cc7ebb17f"),
        (
            0xff00_075b_cd15_0000_u64 as i64,
            "a1c8c7271a4452cde7262f51f3629db2",
        ),
        (-1, "20f62cb5648dc2d771471c8a2486a9ee"),
        (0x0000_0000_0000_0001, "054cc74a37327db215e702e20c73f005"),
    ];

    #[test]
    fn matches_java_vectors() {
        for &(id, expected) in JAVA_VECTORS {
            assert_eq!(hex(&password(SessionId(id))), expected, "id {:#x}", id);
        }
    }

    #[test]
    fn only_low_48_bits_of_the_seed_matter() {
        // Java gives the same bytes for -1 and Long.MAX_VALUE.
        assert_eq!(password(SessionId(-1)), password(SessionId(i64::MAX)));
    }

    #[test]
    fn java_random_primitives() {
        // new Random(42).nextInt() twice; new Random(-7).nextBytes(new byte[7]).
        let mut r = JavaRandom::new(42);
        assert_eq!(r.next_int(), -1_170_105_035);
        assert_eq!(r.next_int(), 234_785_527);
        let mut r = JavaRandom::new(-7);
        let mut buf = [0u8; 7];
        r.next_bytes(&mut buf);
        assert_eq!(hex(&buf), "8c2ae544838bc8");
    }

    #[test]
    fn check_password_rules() {
        let id = SessionId(0x0100_0a3b_2c4d_0000);
        let good = password(id);
        assert!(check_password(id, &good));
        let mut bad = good;
        bad[15] ^= 1;
        assert!(!check_password(id, &bad));
        assert!(!check_password(id, &good[..15]));
        let mut long = good.to_vec();
        long.push(0);
        assert!(!check_password(id, &long));
        assert!(!check_password(SessionId(0), &password(SessionId(0))));
        assert!(!check_password(SessionId(0x0100_0a3b_2c4d_0001), &good));
    }
}
