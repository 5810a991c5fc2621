//! Users, their roles, and API tokens, kept in the state directory (`server/users.json`).
//! Passwords are stored as Argon2id hashes (PHC strings), tokens as BLAKE2b hashes (a token is
//! 32 random bytes: a slow hash adds nothing to its strength). On first start with no users,
//! `admin` is created with the password in `WEIR_ADMIN_PASSWORD`, or a generated one printed
//! once. A password checked once is remembered (by the BLAKE2b hash of name and password) so
//! HTTP Basic does not pay Argon2 on every request.
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::PathBuf;
use std::sync::Mutex;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use blake2::{Blake2b, Digest};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::catalog::write_durably;
use super::error::ApiError;
use super::pipeline::now_ms;

/// What a user may do, by the data's life cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads pipelines' status and granted sinks.
    Viewer,
    /// A viewer who acts on alerts.
    Operator,
    /// A viewer who labels review items.
    Reviewer,
    /// Creates, validates and stops their own pipelines.
    Analyst,
    /// Sources, sinks and connections with their secrets; any pipeline.
    Engineer,
    /// Registers and switches model versions.
    MlEngineer,
    /// Users, roles, grants and the audit log; everything.
    Admin,
}

impl Role {
    /// Every role.
    pub const ALL: [Role; 7] = [
        Role::Viewer,
        Role::Operator,
        Role::Reviewer,
        Role::Analyst,
        Role::Engineer,
        Role::MlEngineer,
        Role::Admin,
    ];

    /// The role's name (`ml_engineer`, …).
    pub fn name(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(String::from))
            .unwrap_or_default()
    }

    /// The role called `name`.
    pub fn parse(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// One user as stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredUser {
    /// Argon2id PHC string.
    password: String,
    roles: BTreeSet<Role>,
    created_ms: u64,
    /// SCRAM-SHA-256's salt and salted password (hex), for the Postgres protocol.
    #[serde(default)]
    scram: Option<(String, String)>,
}

/// What is stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Stored {
    users: BTreeMap<String, StoredUser>,
    /// BLAKE2b-256 of the token (hex) → its user.
    tokens: BTreeMap<String, String>,
    /// Table → the users and roles granted `SELECT` on it.
    #[serde(default)]
    grants: BTreeMap<String, BTreeSet<String>>,
}

/// SCRAM's iteration count.
pub const SCRAM_ITERATIONS: usize = 4096;

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// A signed-in user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The name.
    pub name: String,
    /// The roles.
    pub roles: BTreeSet<Role>,
}

impl User {
    /// Whether the user has any of `roles`, or is an admin.
    pub fn any(&self, roles: &[Role]) -> bool {
        self.roles.contains(&Role::Admin) || roles.iter().any(|r| self.roles.contains(r))
    }
}

/// A user as listed.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserInfo {
    /// The name.
    pub name: String,
    /// The roles.
    pub roles: Vec<Role>,
    /// Created at (ms since the Unix epoch).
    pub created_ms: u64,
}

/// The users of a server.
pub struct Users {
    path: PathBuf,
    stored: Mutex<Stored>,
    /// BLAKE2b of `name\0password` for passwords checked once.
    checked: Mutex<HashMap<String, String>>,
}

/// A new random token (`weir_` and 64 hex digits).
pub fn random_token() -> String {
    let mut b = [0u8; 32];
    OsRng.fill_bytes(&mut b);
    format!(
        "weir_{}",
        b.iter().map(|b| format!("{b:02x}")).collect::<String>()
    )
}

/// The hex BLAKE2b-256 of `parts`, each ended by a zero byte.
pub(crate) fn hex_hash(parts: &[&[u8]]) -> String {
    let mut h = Blake2b::<blake2::digest::consts::U32>::new();
    for p in parts {
        h.update(p);
        h.update([0u8]);
    }
    hex(&h.finalize())
}

fn hash_password(password: &str) -> Result<String, ApiError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ApiError::Internal(format!("hashing a password: {e}")))
}

fn internal(e: impl std::fmt::Display) -> ApiError {
    ApiError::Internal(e.to_string())
}

impl Users {
    /// The users in `state_dir/server/users.json`; with none, `admin` is created (password
    /// from `admin_password`, or generated and printed once).
    pub fn open(
        state_dir: &std::path::Path,
        admin_password: Option<String>,
    ) -> Result<Users, ApiError> {
        let path = state_dir.join("server").join("users.json");
        let stored: Stored = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice(&b)
                .map_err(|e| internal(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Stored::default(),
            Err(e) => return Err(internal(format!("{}: {e}", path.display()))),
        };
        let users = Users {
            path,
            stored: Mutex::new(stored),
            checked: Mutex::new(HashMap::new()),
        };
        if users.stored.lock().map_err(internal)?.users.is_empty() {
            let (password, generated) = match admin_password.filter(|p| !p.is_empty()) {
                Some(p) => (p, false),
                None => (random_token()[5..29].to_string(), true),
            };
            users.create("admin", &password, &[Role::Admin])?;
            if generated {
                eprintln!("weir serve: created user admin with password {password} (shown once; set WEIR_ADMIN_PASSWORD to choose it)");
            }
        }
        Ok(users)
    }

    fn save(&self, s: &Stored) -> Result<(), ApiError> {
        let bytes = serde_json::to_vec_pretty(s).map_err(internal)?;
        write_durably(&self.path, &bytes)
    }

    /// Creates user `name` with `roles`.
    pub fn create(&self, name: &str, password: &str, roles: &[Role]) -> Result<(), ApiError> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c));
        if !ok {
            return Err(ApiError::BadRequest(format!(
                "user name '{name}': use 1 to 64 letters, digits, '_', '-' or '.'"
            )));
        }
        if password.len() < 8 {
            return Err(ApiError::BadRequest(
                "a password has at least 8 characters".into(),
            ));
        }
        let hash = hash_password(password)?;
        let mut salt = [0u8; 16];
        OsRng.fill_bytes(&mut salt);
        let salted =
            pgwire::api::auth::sasl::scram::gen_salted_password(password, &salt, SCRAM_ITERATIONS);
        let mut s = self.stored.lock().map_err(internal)?;
        if s.users.contains_key(name) {
            return Err(ApiError::Conflict(format!("user '{name}' exists")));
        }
        s.users.insert(
            name.to_string(),
            StoredUser {
                password: hash,
                roles: roles.iter().copied().collect(),
                created_ms: now_ms(),
                scram: Some((hex(&salt), hex(&salted))),
            },
        );
        self.save(&s)
    }

    /// Grants (`true`) or revokes `role` of user `name`.
    pub fn set_role(&self, name: &str, role: Role, grant: bool) -> Result<(), ApiError> {
        let mut s = self.stored.lock().map_err(internal)?;
        let u = s
            .users
            .get_mut(name)
            .ok_or_else(|| ApiError::NotFound(format!("no user '{name}'")))?;
        match grant {
            true => u.roles.insert(role),
            false => u.roles.remove(&role),
        };
        self.save(&s)?;
        drop(s);
        // A revoked role must not live on in a remembered password check.
        self.checked
            .lock()
            .map_err(internal)?
            .retain(|_, n| n != name);
        Ok(())
    }

    /// Deletes user `name` and their tokens.
    pub fn delete(&self, name: &str) -> Result<(), ApiError> {
        let mut s = self.stored.lock().map_err(internal)?;
        if s.users.remove(name).is_none() {
            return Err(ApiError::NotFound(format!("no user '{name}'")));
        }
        s.tokens.retain(|_, u| u != name);
        self.save(&s)?;
        drop(s);
        self.checked
            .lock()
            .map_err(internal)?
            .retain(|_, n| n != name);
        Ok(())
    }

    /// Every user.
    pub fn list(&self) -> Vec<UserInfo> {
        let Ok(s) = self.stored.lock() else {
            return Vec::new();
        };
        s.users
            .iter()
            .map(|(n, u)| UserInfo {
                name: n.clone(),
                roles: u.roles.iter().copied().collect(),
                created_ms: u.created_ms,
            })
            .collect()
    }

    fn user(&self, name: &str) -> Option<User> {
        let s = self.stored.lock().ok()?;
        s.users.get(name).map(|u| User {
            name: name.to_string(),
            roles: u.roles.clone(),
        })
    }

    /// The user whose name and password these are.
    pub fn check_password(&self, name: &str, password: &str) -> Option<User> {
        let key = hex_hash(&[name.as_bytes(), password.as_bytes()]);
        if self
            .checked
            .lock()
            .ok()?
            .get(&key)
            .is_some_and(|n| n == name)
        {
            return self.user(name);
        }
        let hash = self.stored.lock().ok()?.users.get(name)?.password.clone();
        let parsed = PasswordHash::new(&hash).ok()?;
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .ok()?;
        self.checked.lock().ok()?.insert(key, name.to_string());
        self.user(name)
    }

    /// User `name`'s SCRAM salt and salted password.
    pub fn scram(&self, name: &str) -> Option<(Vec<u8>, Vec<u8>)> {
        let s = self.stored.lock().ok()?;
        let (salt, salted) = s.users.get(name)?.scram.clone()?;
        Some((unhex(&salt)?, unhex(&salted)?))
    }

    /// The signed-in user `name`, if there is one.
    pub fn get(&self, name: &str) -> Option<User> {
        self.user(name)
    }

    /// Grants (`true`) or revokes `SELECT` on `table` to a user or role.
    pub fn set_select(&self, table: &str, grantee: &str, grant: bool) -> Result<(), ApiError> {
        let mut s = self.stored.lock().map_err(internal)?;
        if !s.users.contains_key(grantee) && Role::parse(grantee).is_none() {
            return Err(ApiError::NotFound(format!("no user or role '{grantee}'")));
        }
        let set = s.grants.entry(table.to_string()).or_default();
        match grant {
            true => set.insert(grantee.to_string()),
            false => set.remove(grantee),
        };
        self.save(&s)
    }

    /// Whether `SELECT` on `table` is granted to `user` or one of their roles.
    pub fn granted(&self, table: &str, user: &User) -> bool {
        let Ok(s) = self.stored.lock() else {
            return false;
        };
        s.grants.get(table).is_some_and(|g| {
            g.contains(&user.name) || user.roles.iter().any(|r| g.contains(&r.name()))
        })
    }

    /// The user a token belongs to.
    pub fn check_token(&self, token: &str) -> Option<User> {
        let name = self
            .stored
            .lock()
            .ok()?
            .tokens
            .get(&hex_hash(&[token.as_bytes()]))?
            .clone();
        self.user(&name)
    }

    /// A new token for user `name` (stored hashed; shown once).
    pub fn new_token(&self, name: &str) -> Result<String, ApiError> {
        let token = random_token();
        let mut s = self.stored.lock().map_err(internal)?;
        s.tokens
            .insert(hex_hash(&[token.as_bytes()]), name.to_string());
        self.save(&s)?;
        Ok(token)
    }
}
