//! What a hostile card does and when: the seeded generator, the kinds of
//! mischief, and a plan (which kinds, how often).

/// A small, seedable pseudo-random generator (SplitMix64): the same seed
/// gives the same mischief, on every machine.
#[derive(Debug, Clone)]
pub struct HostileRng(u64);

impl HostileRng {
    /// A generator started from `seed`.
    pub fn new(seed: u64) -> Self {
        HostileRng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (`0` when `n` is 0).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high - low + 1)
    }

    /// True with odds `1 / one_in`.
    pub fn one_in(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// One element of a non-empty slice.
    ///
    /// # Panics
    /// If `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

/// One kind of mischief the hostile card can do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mischief {
    /// The command is processed; the response is replaced by random bytes.
    RandomData,
    /// The command is processed; the response is cut short.
    Truncated,
    /// The command is processed; data bytes are dropped or added before a
    /// status word that says all is well.
    WrongLength,
    /// The command is processed; the status word is a random one.
    RandomStatus,
    /// The command is processed, but its answer comes only after `61xx`
    /// without data to GET RESPONSE (a few times, many times, or for ever;
    /// `6100` often).
    Storm61,
    /// `6Cxx` to a command and to each resend of it, each time another Le
    /// (a few times, many times, or for ever).
    Storm6C,
    /// Random data and `61xx`, again for every GET RESPONSE: a response
    /// without end (or a long one).
    EndlessChaining,
    /// The other application answers this command.
    ForeignAnswer,
    /// For a few commands, GET DATA reads the other application's objects:
    /// contents change between reads.
    ChangingContents,
    /// Between transactions, "another process" selects the other
    /// application.
    ForeignSelect,
    /// The card is reset (before a transaction, as another process would,
    /// or in the middle of one).
    Reset,
    /// The card is pulled out, and put back a little later.
    Removal,
}

impl Mischief {
    /// Every kind.
    pub const ALL: [Mischief; 12] = [
        Mischief::RandomData,
        Mischief::Truncated,
        Mischief::WrongLength,
        Mischief::RandomStatus,
        Mischief::Storm61,
        Mischief::Storm6C,
        Mischief::EndlessChaining,
        Mischief::ForeignAnswer,
        Mischief::ChangingContents,
        Mischief::ForeignSelect,
        Mischief::Reset,
        Mischief::Removal,
    ];

    /// The kind's name in `snake_case` (as `HOSTILE_SKIP` takes it).
    pub fn name(self) -> &'static str {
        match self {
            Mischief::RandomData => "random_data",
            Mischief::Truncated => "truncated",
            Mischief::WrongLength => "wrong_length",
            Mischief::RandomStatus => "random_status",
            Mischief::Storm61 => "storm_61",
            Mischief::Storm6C => "storm_6c",
            Mischief::EndlessChaining => "endless_chaining",
            Mischief::ForeignAnswer => "foreign_answer",
            Mischief::ChangingContents => "changing_contents",
            Mischief::ForeignSelect => "foreign_select",
            Mischief::Reset => "reset",
            Mischief::Removal => "removal",
        }
    }

    /// The kind called `name` (see [`name`](Self::name)).
    pub fn from_name(name: &str) -> Option<Mischief> {
        Mischief::ALL.into_iter().find(|m| m.name() == name)
    }

    /// Whether the kind strikes at the start of a transaction (else at an
    /// APDU).
    pub(super) fn at_transaction(self) -> bool {
        matches!(self, Mischief::ForeignSelect | Mischief::Reset)
    }
}

/// What a hostile card does for a while: which kinds of mischief, and how
/// often (each APDU and each transaction meets one with odds 1 in
/// `one_in`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostilePlan {
    /// The kinds of mischief; one is picked at random each time.
    pub kinds: Vec<Mischief>,
    /// The odds, 1 in this many (at least 1).
    pub one_in: u64,
}

impl HostilePlan {
    /// One to three kinds out of `allowed`, at odds from 1 in 2 to 1 in 40.
    pub fn random(rng: &mut HostileRng, allowed: &[Mischief]) -> HostilePlan {
        let count = rng.between(1, 3);
        let mut kinds = Vec::new();
        for _ in 0..count {
            if allowed.is_empty() {
                break;
            }
            let kind = *rng.pick(allowed);
            if !kinds.contains(&kind) {
                kinds.push(kind);
            }
        }
        HostilePlan {
            kinds,
            one_in: *rng.pick(&[2, 4, 8, 15, 40]),
        }
    }
}
