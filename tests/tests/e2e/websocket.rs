//! The WebSocket board (§8) from a client's side: resume, slow consumers,
//! replicas, heartbeats and capacity.
