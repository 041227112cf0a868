//! Password hashing on a fixed pool of OS threads, verification of legacy Django hashes,
//! and the Django-like rules a new password must pass.

use std::fmt;
use std::hint::black_box;
use std::num::NonZeroUsize;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, OnceLock, mpsc};
use std::thread;

use argon2::{Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, Version};
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64_STANDARD;
use saas_core::{ServiceError, ServiceResult, ValidationErrors};
use sha2::Sha256;
use subtle::ConstantTimeEq as _;
use tokio::sync::oneshot;

/// Django's prefix of a PBKDF2-HMAC-SHA256 hash: `pbkdf2_sha256$<iterations>$<salt>$<base64 key>`.
const DJANGO_PBKDF2_PREFIX: &str = "pbkdf2_sha256$";
/// Length in bytes of the key Django derives with PBKDF2-HMAC-SHA256 (the SHA-256 digest size).
const DJANGO_PBKDF2_KEY_LEN: usize = 32;
/// Django's Argon2 hasher stores `argon2` followed by the PHC string (`argon2$argon2id$v=19$...`).
const DJANGO_ARGON2_PREFIX: &str = "argon2";
/// Django marks a user without a usable password by a hash starting with `!`.
const DJANGO_UNUSABLE_PREFIX: &str = "!";
/// Start of every Argon2 PHC string (`$argon2id$`, `$argon2i$`, `$argon2d$`).
const ARGON2_PHC_PREFIX: &str = "$argon2";
/// Input of the dummy hash verified when there is no real one, so both cases cost the same.
const DUMMY_PASSWORD: &[u8] = b"saas-auth: no stored password";
/// Fixed salt of the dummy hash (its value is irrelevant, only its cost matters).
const DUMMY_SALT: &[u8] = b"saas-auth-dummy-salt";
/// Minimum number of characters of a new password.
const MIN_PASSWORD_LENGTH: usize = 8;
/// Minimum length of an email's local part for "contains the local part" to count as similar.
const MIN_SIMILAR_LOCAL_PART_LENGTH: usize = 4;

/// Work sent to a hashing thread; it answers through a oneshot channel it owns.
type HashingJob = Box<dyn FnOnce() + Send + 'static>;

/// The outcome of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verification {
    /// The password does not match, or there is no usable stored hash.
    Invalid,
    /// The password matches a hash made with the current algorithm and parameters.
    Valid,
    /// The password matches a legacy or outdated hash: store a fresh `hash()` of it.
    ValidNeedsRehash,
}

impl Verification {
    /// Whether the password matched, whether or not a rehash is due.
    pub fn is_valid(self) -> bool {
        !matches!(self, Verification::Invalid)
    }
}

/// Hashes and verifies passwords on a fixed set of dedicated OS threads, off the async runtime.
/// One hash runs per thread at a time, bounding CPU use and memory (~19 MiB per Argon2id hash).
#[derive(Clone)]
pub struct PasswordHasher {
    jobs: Arc<mpsc::Sender<HashingJob>>,
}

impl PasswordHasher {
    /// Starts `threads` hashing threads (at least one); they stop when the last clone is dropped.
    pub fn new(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<HashingJob>();
        let queue = Arc::new(Mutex::new(queue));
        for index in 0..threads.max(1) {
            let queue = Arc::clone(&queue);
            let started = thread::Builder::new()
                .name(format!("password-hasher-{index}"))
                .spawn(move || run_hashing_thread(&queue));
            if let Err(err) = started {
                tracing::error!(error = %err, "could not start a password hashing thread");
            }
        }
        Self { jobs: Arc::new(jobs) }
    }

    /// Hashes `password` with Argon2id (m=19456 KiB, t=2, p=1) and a random salt, as a PHC string.
    pub async fn hash(&self, password: String) -> ServiceResult<String> {
        self.run_on_hashing_thread(move || hash_with_argon2id(password.as_bytes())).await
    }

    /// Checks `password` against a stored Argon2 PHC string or Django `pbkdf2_sha256` hash.
    /// With no stored hash it spends the same work and answers `Invalid`, so timing reveals no account.
    pub async fn verify(&self, password: String, stored: Option<String>) -> ServiceResult<Verification> {
        self.run_on_hashing_thread(move || verify_against_stored(password.as_bytes(), stored.as_deref())).await
    }

    /// Queues `work` for the next free hashing thread and waits for its answer.
    async fn run_on_hashing_thread<T, W>(&self, work: W) -> ServiceResult<T>
    where
        T: Send + 'static,
        W: FnOnce() -> ServiceResult<T> + Send + 'static,
    {
        let (answer, answered) = oneshot::channel();
        let job: HashingJob = Box::new(move || {
            // The caller has gone (e.g. its request was cancelled): skip the expensive work.
            if answer.is_closed() {
                return;
            }
            let _ = answer.send(work());
        });
        self.jobs.send(job).map_err(|_| ServiceError::internal("the password hashing threads have stopped"))?;
        answered.await.map_err(|_| ServiceError::internal("a password hashing job ended without an answer"))?
    }
}

impl Default for PasswordHasher {
    fn default() -> Self {
        Self::new(thread::available_parallelism().map_or(1, NonZeroUsize::get))
    }
}

impl fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PasswordHasher").finish_non_exhaustive()
    }
}

/// The loop of one hashing thread: run queued jobs until every `PasswordHasher` is dropped.
fn run_hashing_thread(queue: &Mutex<mpsc::Receiver<HashingJob>>) {
    loop {
        // The lock is held only while waiting for a job, never while running one.
        let next = match queue.lock() {
            Ok(receiver) => receiver.recv(),
            Err(poisoned) => poisoned.into_inner().recv(),
        };
        let Ok(job) = next else {
            return;
        };
        // A panicking job drops its answer channel (its caller gets an internal error); the thread lives on.
        if catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("a password hashing job panicked");
        }
    }
}

thread_local! {
    /// The Argon2 working memory of this hashing thread (~19 MiB), reused by every hash it
    /// runs: no allocation, page faults or zeroing per hash, and a fixed footprint per thread.
    static ARGON2_MEMORY: std::cell::RefCell<Vec<argon2::Block>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Runs Argon2 on this thread's reused memory. Every block is written before it is read,
/// so what an earlier hash left there cannot change the result.
fn argon2_raw(argon: &Argon2<'_>, password: &[u8], salt: &[u8], out: &mut [u8]) -> Result<(), argon2::Error> {
    let blocks = argon.params().block_count();
    ARGON2_MEMORY.with(|memory| {
        let mut memory = memory.borrow_mut();
        if memory.len() < blocks {
            memory.resize(blocks, argon2::Block::default());
        }
        argon.hash_password_into_with_memory(password, salt, out, &mut memory[..blocks])
    })
}

/// Hashes `password` with the current Argon2id parameters and a fresh random salt.
fn hash_with_argon2id(password: &[u8]) -> ServiceResult<String> {
    use argon2::password_hash::phc::{Output, ParamsString, Salt};
    use rand::RngCore as _;
    let argon = Argon2::default();
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    argon2_raw(&argon, password, &salt, &mut out).map_err(ServiceError::internal)?;
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(argon.params()).map_err(ServiceError::internal)?,
        salt: Some(Salt::new(&salt).map_err(ServiceError::internal)?),
        hash: Some(Output::new(&out).map_err(ServiceError::internal)?),
    };
    Ok(hash.to_string())
}

/// Checks `password` against a parsed Argon2 hash on the reused memory (constant-time compare).
fn argon2_matches(password: &[u8], parsed: &PasswordHash) -> Result<bool, String> {
    let algorithm = Algorithm::try_from(parsed.algorithm.as_str()).map_err(|e| e.to_string())?;
    let version = parsed.version.map(Version::try_from).transpose().map_err(|e| e.to_string())?.unwrap_or_default();
    let params = Params::try_from(parsed).map_err(|e| e.to_string())?;
    let salt = parsed.salt.as_ref().ok_or("no salt")?;
    let expected = parsed.hash.as_ref().ok_or("no hash")?.as_bytes();
    let mut out = vec![0u8; expected.len()];
    let argon = Argon2::new(algorithm, version, params);
    argon2_raw(&argon, password, salt.as_ref(), &mut out).map_err(|e| e.to_string())?;
    Ok(bool::from(out.as_slice().ct_eq(expected)))
}

/// Checks `password` against whatever is stored, recognising each supported format by its prefix.
fn verify_against_stored(password: &[u8], stored: Option<&str>) -> ServiceResult<Verification> {
    let Some(stored) = stored else {
        return reject_after_equal_work(password);
    };
    if let Some(encoded) = stored.strip_prefix(DJANGO_PBKDF2_PREFIX) {
        return match verify_django_pbkdf2(password, encoded) {
            Some(true) => Ok(Verification::ValidNeedsRehash),
            Some(false) => Ok(Verification::Invalid),
            None => {
                tracing::warn!("stored Django PBKDF2 password hash is malformed");
                reject_after_equal_work(password)
            }
        };
    }
    if let Some(phc) = stored.strip_prefix(DJANGO_ARGON2_PREFIX).filter(|phc| phc.starts_with(ARGON2_PHC_PREFIX)) {
        // Valid or not, a Django-wrapped hash is rewritten in this crate's own format.
        return verify_argon2(password, phc).map(|verification| match verification {
            Verification::Valid => Verification::ValidNeedsRehash,
            other => other,
        });
    }
    if stored.starts_with(ARGON2_PHC_PREFIX) {
        return verify_argon2(password, stored);
    }
    if !stored.is_empty() && !stored.starts_with(DJANGO_UNUSABLE_PREFIX) {
        tracing::warn!("stored password hash has an unknown format");
    }
    reject_after_equal_work(password)
}

/// Checks `password` against an Argon2 PHC string, flagging hashes made with outdated parameters.
fn verify_argon2(password: &[u8], phc: &str) -> ServiceResult<Verification> {
    let parsed = match PasswordHash::new(phc) {
        Ok(parsed) => parsed,
        Err(err) => {
            tracing::warn!(error = %err, "stored Argon2 password hash is malformed");
            return reject_after_equal_work(password);
        }
    };
    // The algorithm, version and parameters come from the stored hash, not from `Argon2::default()`.
    match argon2_matches(password, &parsed) {
        Ok(true) if argon2_needs_rehash(&parsed) => Ok(Verification::ValidNeedsRehash),
        Ok(true) => Ok(Verification::Valid),
        Ok(false) => Ok(Verification::Invalid),
        Err(err) => {
            tracing::warn!(error = %err, "stored Argon2 password hash could not be checked");
            Ok(Verification::Invalid)
        }
    }
}

/// Whether a stored Argon2 hash differs from what `hash_with_argon2id` produces today.
fn argon2_needs_rehash(parsed: &PasswordHash) -> bool {
    let Ok(params) = Params::try_from(parsed) else {
        return true;
    };
    let current = Params::DEFAULT;
    parsed.algorithm != Algorithm::default().ident()
        || parsed.version != Some(u32::from(Version::default()))
        || params.m_cost() != current.m_cost()
        || params.t_cost() != current.t_cost()
        || params.p_cost() != current.p_cost()
        || params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN) != Params::DEFAULT_OUTPUT_LEN
        || !params.keyid().is_empty()
        || !params.data().is_empty()
}

/// Checks `password` against the part of a Django `pbkdf2_sha256` hash after its prefix
/// (`<iterations>$<salt>$<base64 key>`); `None` when that part is malformed.
fn verify_django_pbkdf2(password: &[u8], encoded: &str) -> Option<bool> {
    let mut fields = encoded.splitn(3, '$');
    let iterations = fields.next()?.parse::<u32>().ok().filter(|&iterations| iterations > 0)?;
    let salt = fields.next()?;
    let expected_key = BASE64_STANDARD.decode(fields.next()?).ok().filter(|key| key.len() == DJANGO_PBKDF2_KEY_LEN)?;
    let derived_key = pbkdf2::pbkdf2_hmac_array::<Sha256, DJANGO_PBKDF2_KEY_LEN>(password, salt.as_bytes(), iterations);
    Some(derived_key.as_slice().ct_eq(expected_key.as_slice()).into())
}

/// Verifies `password` against a fixed dummy Argon2id hash and answers `Invalid`, so that
/// a missing or unusable hash costs as much time as a real one.
fn reject_after_equal_work(password: &[u8]) -> ServiceResult<Verification> {
    let dummy = dummy_hash()?;
    let _ = black_box(argon2_matches(password, dummy));
    Ok(Verification::Invalid)
}

/// The dummy Argon2id hash (current parameters), computed on first use and kept for the process.
fn dummy_hash() -> ServiceResult<&'static PasswordHash> {
    static DUMMY_HASH: OnceLock<PasswordHash> = OnceLock::new();
    if let Some(hash) = DUMMY_HASH.get() {
        return Ok(hash);
    }
    let hash: PasswordHash =
        Argon2::default().hash_password_with_salt(DUMMY_PASSWORD, DUMMY_SALT).map_err(ServiceError::internal)?;
    Ok(DUMMY_HASH.get_or_init(|| hash))
}

/// Checks a new password against Django's default validators (similarity to the email, minimum
/// length, common passwords, all digits); every failure is reported under `field`.
pub fn validate_password(password: &str, email: Option<&str>, field: &str) -> ServiceResult<()> {
    let mut errors = ValidationErrors::default();
    if email.is_some_and(|email| is_similar_to_email(password, email)) {
        errors.add(field, "The password is too similar to the email address.");
    }
    if password.chars().count() < MIN_PASSWORD_LENGTH {
        errors.add(
            field,
            format!("This password is too short. It must contain at least {MIN_PASSWORD_LENGTH} characters."),
        );
    }
    if is_common_password(password) {
        errors.add(field, "This password is too common.");
    }
    if !password.is_empty() && password.chars().all(char::is_numeric) {
        errors.add(field, "This password is entirely numeric.");
    }
    errors.into_result()
}

/// Whether `password` (case-insensitively) is the email or its local part, contains a local part
/// of at least 4 characters, or is contained in the local part.
fn is_similar_to_email(password: &str, email: &str) -> bool {
    let password = password.to_lowercase();
    let email = email.trim().to_lowercase();
    if password.is_empty() || email.is_empty() {
        return false;
    }
    if password == email {
        return true;
    }
    let local_part = email.rsplit_once('@').map_or(email.as_str(), |(local_part, _domain)| local_part);
    !local_part.is_empty()
        && (password == local_part
            || (local_part.chars().count() >= MIN_SIMILAR_LOCAL_PART_LENGTH && password.contains(local_part))
            || local_part.contains(password.as_str()))
}

/// Whether `password`, trimmed and lower-cased, is in the list of common leaked passwords.
fn is_common_password(password: &str) -> bool {
    let candidate = password.trim().to_lowercase();
    COMMON_PASSWORDS.contains(&candidate.as_str())
}

/// Some of the most common passwords in public leaks (all lower-case), refused for new passwords.
#[rustfmt::skip]
const COMMON_PASSWORDS: &[&str] = &[
    "123456", "password", "12345678", "qwerty", "123456789", "12345", "1234", "111111", "1234567", "dragon", "123123",
    "baseball", "abc123", "football", "monkey", "letmein", "696969", "shadow", "master", "666666", "qwertyuiop",
    "123321", "mustang", "1234567890", "michael", "654321", "superman", "1qaz2wsx", "7777777", "121212", "000000",
    "qazwsx", "123qwe", "killer", "trustno1", "jordan", "jennifer", "zxcvbnm", "asdfgh", "hunter", "buster", "soccer",
    "harley", "batman", "andrew", "tigger", "sunshine", "iloveyou", "2000", "charlie", "robert", "thomas", "hockey",
    "ranger", "daniel", "starwars", "klaster", "112233", "george", "computer", "michelle", "jessica", "pepper", "1111",
    "zxcvbn", "555555", "11111111", "131313", "freedom", "777777", "pass", "maggie", "159753", "aaaaaa", "ginger",
    "princess", "joshua", "cheese", "amanda", "summer", "love", "ashley", "nicole", "chelsea", "biteme", "matthew",
    "access", "yankees", "987654321", "dallas", "austin", "thunder", "taylor", "matrix", "password1", "password123",
    "welcome", "welcome1", "admin", "admin123", "passw0rd", "p@ssw0rd", "qwerty123", "changeme", "secret", "1q2w3e4r",
    "1q2w3e4r5t", "1q2w3e", "qwe123", "qwerty1", "asdfghjkl", "asdf1234", "zaq12wsx", "abcd1234", "abcdef", "123456a",
    "a123456", "123456789a", "12341234", "123654", "147258369", "123123123", "1234qwer", "88888888", "0987654321",
    "00000000", "987654", "112233445566", "123456789012", "222222", "333333", "444444", "999999", "888888", "101010",
    "11111", "00000", "55555", "159357", "147258", "789456", "789456123", "456789", "iloveyou1", "iloveyou2",
    "princess1", "monkey1", "football1", "baseball1", "charlie1", "michael1", "jordan23", "superman1", "sunshine1",
    "letmein1", "shadow1", "master1", "dragon1", "1234567891", "password12", "password2", "pass123", "pass1234",
    "administrator", "root", "toor", "guest", "user", "login", "test", "test123", "testing", "demo", "qwertyu",
    "1qazxsw2", "q1w2e3r4", "q1w2e3r4t5", "qwer1234", "zxcvbnm1", "asdasd", "asdfasdf", "qweqwe", "qweasd", "qweasdzxc",
    "1qaz2wsx3edc", "aa123456", "abc12345", "abcd123", "a1b2c3", "a1b2c3d4", "zxc123", "azerty", "000000000", "rockyou",
    "babygirl", "lovely", "iloveu", "chocolate", "soccer1", "anthony", "friends", "butterfly", "purple", "angel",
    "liverpool", "justin", "loveme", "bubbles", "andrea", "carlos", "hannah", "loveyou", "pretty", "basketball",
    "angels", "tweety", "flower", "playboy", "hello", "elizabeth", "hottie", "tinkerbell", "samantha", "barbie",
    "lovers", "teamo", "jasmine", "brandon", "melissa", "eminem", "danielle", "forever", "family", "jonathan",
    "whatever", "vanessa", "cookie", "naruto", "sweety", "spongebob", "joseph", "junior", "softball", "yellow",
    "daniela", "lauren", "mickey", "princesa", "alexandra", "alexis", "jesus", "estrella", "miguel", "william",
    "beautiful", "mylove", "angela", "poohbear", "patrick", "iloveme", "sakura", "adrian", "alexander", "destiny",
    "christian", "sayang", "america", "dancer", "monica", "richard", "diamond", "carolina", "steven", "rangers",
    "orange", "shorty", "nathan", "snoopy", "gabriel", "cherry", "sandra", "alejandro", "brittany", "alejandra",
    "patricia", "rachel", "tequiero", "arsenal", "dolphin", "antonio", "heather", "david", "peanut", "blink182",
    "sweetie", "beauty", "victoria", "honey", "fernando", "pokemon", "corazon", "chicken", "cristina", "rainbow",
    "kisses", "manuel", "myspace", "rebelde", "ricardo", "heaven", "martin", "greenday", "november", "madison",
    "mother", "123abc", "september", "december", "morgan", "mariposa", "maria", "gabriela", "bailey", "jeremy",
    "pamela", "kimberly", "gemini", "shannon", "lucky", "silver", "hello123", "internet", "samsung", "google", "apple",
    "mercedes", "ferrari", "porsche", "corvette", "nothing", "secret1", "jackson", "hello1", "hunter2", "mypass",
    "mypassword", "letmein123", "welcome123", "sunshine123", "qwerty12", "qwerty1234", "admin1", "admin1234", "root123",
    "master123", "monkey123", "dragon123", "football123", "baseball123", "princess123", "superman123", "liverpool1",
    "chelsea1", "arsenal1", "whatever1", "starwars1", "pokemon1", "michelle1", "jessica1", "ashley1", "nicole1",
];

#[cfg(test)]
mod tests {
    use super::*;

    /// Made by Django 5.2 `make_password("correct horse battery", salt="DjangoSalt1234", hasher="pbkdf2_sha256")`.
    const DJANGO_PBKDF2_HASH: &str =
        "pbkdf2_sha256$1000000$DjangoSalt1234$8SlhOrhwkPY32Run45UNkHDRVle0vKM7bX+TGzZPoBE=";

    /// A valid Argon2id hash of `password` with cheap, non-default parameters (m=8 KiB, t=1, p=1).
    fn cheap_argon2id_hash(password: &str) -> String {
        let params = Params::new(8, 1, 1, None).expect("valid parameters");
        let cheap_argon2 = Argon2::new(Algorithm::Argon2id, Version::V0x13, params);
        let hash: PasswordHash =
            argon2::PasswordHasher::hash_password_with_salt(&cheap_argon2, password.as_bytes(), b"cheap-test-salt")
                .expect("hash");
        hash.to_string()
    }

    /// The messages `validate_password` reported for the `password` field.
    fn rejection_messages(result: ServiceResult<()>) -> Vec<String> {
        let err = result.expect_err("the password should be rejected");
        assert_eq!(err.code(), "validation.failed");
        let fields = err.details().get("fields").expect("fields in the details");
        let messages = fields.get("password").and_then(|list| list.as_array()).expect("messages for the field");
        messages.iter().filter_map(|message| message.as_str().map(str::to_owned)).collect()
    }

    #[test]
    fn the_hasher_is_cheap_to_share_across_tasks() {
        fn assert_shareable<T: Clone + Send + Sync + 'static>() {}
        assert_shareable::<PasswordHasher>();
    }

    #[tokio::test]
    async fn a_hashed_password_verifies_and_a_wrong_or_missing_one_does_not() {
        let hasher = PasswordHasher::new(2);
        let stored = hasher.hash("correct horse battery".to_owned()).await.expect("hash");
        assert!(stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "unexpected hash format: {stored}");

        let (right, wrong, missing) = tokio::join!(
            hasher.verify("correct horse battery".to_owned(), Some(stored.clone())),
            hasher.verify("correct horse battery!".to_owned(), Some(stored)),
            hasher.verify("correct horse battery".to_owned(), None),
        );
        assert_eq!(right.expect("verify"), Verification::Valid);
        assert_eq!(wrong.expect("verify"), Verification::Invalid);
        assert_eq!(missing.expect("verify"), Verification::Invalid);
    }

    #[tokio::test]
    async fn an_argon2_hash_with_old_parameters_or_in_django_format_needs_a_rehash() {
        let hasher = PasswordHasher::new(2);
        let stored = cheap_argon2id_hash("correct horse battery");

        let outdated = hasher.verify("correct horse battery".to_owned(), Some(stored.clone())).await;
        assert_eq!(outdated.expect("verify"), Verification::ValidNeedsRehash);
        let django = hasher.verify("correct horse battery".to_owned(), Some(format!("argon2{stored}"))).await;
        assert_eq!(django.expect("verify"), Verification::ValidNeedsRehash);
        let wrong = hasher.verify("wrong horse battery".to_owned(), Some(stored)).await;
        assert_eq!(wrong.expect("verify"), Verification::Invalid);
    }

    #[tokio::test]
    async fn a_django_pbkdf2_hash_verifies_and_needs_a_rehash() {
        let hasher = PasswordHasher::new(2);
        let (right, wrong) = tokio::join!(
            hasher.verify("correct horse battery".to_owned(), Some(DJANGO_PBKDF2_HASH.to_owned())),
            hasher.verify("Correct horse battery".to_owned(), Some(DJANGO_PBKDF2_HASH.to_owned())),
        );
        assert_eq!(right.expect("verify"), Verification::ValidNeedsRehash);
        assert_eq!(wrong.expect("verify"), Verification::Invalid);
    }

    #[tokio::test]
    async fn unknown_or_unusable_hashes_are_invalid() {
        let hasher = PasswordHasher::new(2);
        let (bcrypt, unusable, broken) = tokio::join!(
            hasher.verify(
                "correct horse battery".to_owned(),
                Some("bcrypt_sha256$$2b$12$R9h/cIPz0gi.URNNX3kh2OPST9/PgBkqquzi.Ss7KIUgO2t0jWMUW".to_owned()),
            ),
            hasher.verify("correct horse battery".to_owned(), Some("!Xk2lqzPq9Bv0m".to_owned())),
            hasher.verify("correct horse battery".to_owned(), Some("pbkdf2_sha256$many$salt$key".to_owned())),
        );
        assert_eq!(bcrypt.expect("verify"), Verification::Invalid);
        assert_eq!(unusable.expect("verify"), Verification::Invalid);
        assert_eq!(broken.expect("verify"), Verification::Invalid);
    }

    #[tokio::test]
    async fn more_concurrent_hashes_than_threads_all_complete() {
        let hasher = PasswordHasher::new(2);
        let tasks: Vec<_> = (0..8)
            .map(|index| {
                let hasher = hasher.clone();
                tokio::spawn(async move { hasher.hash(format!("concurrent password {index}")).await })
            })
            .collect();
        for task in tasks {
            let hash = task.await.expect("task").expect("hash");
            assert!(hash.starts_with("$argon2id$"), "unexpected hash format: {hash}");
        }
    }

    #[test]
    fn a_short_password_is_rejected() {
        let messages = rejection_messages(validate_password("Xk9!q", None, "password"));
        assert_eq!(messages, ["This password is too short. It must contain at least 8 characters."]);
    }

    #[test]
    fn an_entirely_numeric_password_is_rejected() {
        let messages = rejection_messages(validate_password("90817263544", None, "password"));
        assert_eq!(messages, ["This password is entirely numeric."]);
    }

    #[test]
    fn a_password_similar_to_the_email_is_rejected() {
        let messages = rejection_messages(validate_password("ann.smith99", Some("Ann.Smith@example.com"), "password"));
        assert_eq!(messages, ["The password is too similar to the email address."]);
        assert!(validate_password("ann.smith@example.com", Some("ann.smith@example.com"), "password").is_err());
    }

    #[test]
    fn a_common_password_is_rejected_whatever_its_case() {
        let messages = rejection_messages(validate_password("password123", None, "password"));
        assert_eq!(messages, ["This password is too common."]);
        assert!(validate_password("PassWord123", Some("ann.smith@example.com"), "password").is_err());
    }

    #[test]
    fn every_failed_rule_is_reported() {
        let messages = rejection_messages(validate_password("1234", None, "password"));
        assert_eq!(
            messages,
            [
                "This password is too short. It must contain at least 8 characters.",
                "This password is too common.",
                "This password is entirely numeric.",
            ]
        );
    }

    #[test]
    fn a_good_password_is_accepted() {
        assert!(validate_password("correct horse battery", Some("ann.smith@example.com"), "password").is_ok());
        assert!(validate_password("correct horse battery", None, "password").is_ok());
    }

    #[test]
    fn the_common_password_list_is_lower_case_and_large_enough() {
        assert!(COMMON_PASSWORDS.len() >= 200);
        assert!(COMMON_PASSWORDS.iter().all(|common| *common == common.to_lowercase()));
    }

    #[test]
    fn hashes_on_reused_memory_interoperate_with_the_standard_verifier() {
        use argon2::PasswordVerifier as _;
        let ours = hash_with_argon2id(b"first password").unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(Argon2::default().verify_password(b"first password", &parsed).is_ok());
        let theirs = Argon2::default().hash_password(b"second password").unwrap().to_string();
        assert_eq!(verify_argon2(b"second password", &theirs).unwrap(), Verification::Valid);
        assert_eq!(verify_argon2(b"first password", &theirs).unwrap(), Verification::Invalid);
        // The memory left by one hash does not leak into the next.
        assert_eq!(verify_argon2(b"first password", &ours).unwrap(), Verification::Valid);
    }
}
