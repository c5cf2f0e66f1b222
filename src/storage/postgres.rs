//! PostgreSQL backend (shared by replicas).
