// Package weaviate is the distributed vindex.Index: the vectors live in a
// Weaviate cluster (sharded, replicated HNSW), reached with the official
// Go client, so that the index grows past the memory of one machine.
//
// # Data model
//
// One collection (Weaviate class) per model id: ClassName derives a valid
// class name from it ("Gabarit_", the sanitised id, 8 hex digits of its
// hash). The class has no vectorizer, cosine distance, and one property,
// face_id (int, filterable). Its description records, as JSON, the model
// id, the dimension, a fingerprint of the vector transform and the
// compression; Open refuses a collection whose record differs (or that
// has none), so templates of two models, or rotated with two keys, never
// mix. Each face is one object whose id is FaceUUID(model, face id), a
// UUIDv5: adding a face again replaces it, and an id can be deleted
// without looking it up.
//
// No template is sent in clear: every vector, stored or queried, goes
// through Config.Transform, the secret random rotation of package rotate,
// which preserves cosines (recall and scores are unchanged) while the
// coordinates Weaviate holds are not the templates.
//
// # Consistency
//
// Writes (Add) use QUORUM by default and searches ONE: with a replication
// factor of 2 a write reaches both replicas, so a read of either sees it,
// and searches go on answering while a node is down (see below). Deletes
// use ALL: an erasure must
// reach every replica, and a Delete that does not returns an error, which
// the caller (the index outbox) retries until it succeeds; the ids are
// filtered on face_id, found on every replica (ALL) before deletion.
//
// Weaviate (1.35) resolves a consistency level against the replicas it can
// reach, not against the replication factor: once a killed node has left
// the member list (about 3 s), ALL means "all the others", and a delete
// succeeds without reaching that node's replicas (measured: 1 shard, 3
// replicas, one node killed). Delete therefore checks, before and after,
// that every node seen at Open is listed and healthy, and fails (to be
// retried) otherwise. The same resolution makes QUORUM reads fail while a
// node is down when shards have different numbers of live replicas
// ("inconsistent consistency levels"; measured: 3 shards × 2 replicas on 3
// nodes, one killed: 50 of 50 searches failed at QUORUM, none at ONE).
// With 2 replicas and writes at QUORUM (both replicas), reads at ONE still
// see every acknowledged write; they are the default, for a cluster that
// must answer searches during an outage. (A write made during an outage
// reaches the live replica only; asynchronous replication copies it to the
// other when it returns. Meanwhile a search served by the returned replica
// may miss it: searches never show a face the store no longer holds, the
// caller checks, but may briefly miss a face just added.)
//
// When Delete at ALL cannot reach every replica, DeleteSome deletes at
// ONE from the replicas that answer (QUORUM is refused across shards while
// a node is down), and the caller (package vstore) keeps the faces as
// pending deletes, deleted again at ALL until every node acknowledged.
//
// Weaviate's default replica-conflict handling can resurrect a deleted
// object: a replica that missed the delete (down at the time) brings the
// object back when the replicas are repaired. New collections therefore
// set the deletion strategy explicitly to DeleteOnConflict (a conflict
// between a deletion and an object resolves as deleted) with asynchronous
// replication on, so replicas converge towards the deletion. Even so the
// engine is not trusted with erasure: the callers (search, rights
// requests) re-check every candidate against the store, so an erased or
// restricted face that the engine brings back is never shown.
//
// # Search
//
// Search sends nearVector with the transformed query, a distance bound of
// 1-minScore and a limit of k+8, then sorts by score and id and keeps k:
// Weaviate does not order equal scores by id, the extra hits let ties at
// the cut be resolved as the vindex contract wants. Score is 1 - cosine
// distance, exact to float32 rounding without compression. gabarit's
// searches ask for up to 4 × 10,000 hits (nothing is cut at any k) and a
// rights erasure's proof for 1,000 or more: the cluster must allow them
// (QUERY_MAXIMUM_RESULTS, 10,000 by default; scripts/weaviate.sh sets
// 50,000).
//
// HNSW parameters of new collections: ef 128, efConstruction 128,
// maxConnections 32. On vindextest's recall set (5,000 uniform random unit
// vectors of dimension 64, 200 queries: no cluster structure, the worst
// case for a graph index) they gave recall@10 0.998 in one shard and 1.000
// in 3 shards; ef 64 gave 0.979 in one shard, ef 32 with efConstruction 64
// and maxConnections 16 only 0.739.
//
// # Nodes
//
// Open probes every node of the URL and reads the cluster's node list:
// a node unreachable, unhealthy or missing is an error naming it. Requests
// go to the first node; on a connection error the request is retried once
// on the next node, which becomes the current one. Errors name the node and
// the collection, never a vector.
package weaviate
