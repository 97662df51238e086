//! The control room: the control-plane state that services replicate between replicas. The
//! configuration repository, the vector index repository, and the loop with which a replica
//! follows the changes other replicas commit to either of them.

pub mod config;
pub mod follow;
pub mod vectors;
