import Foundation
import GRDB
import WharfCore

/// Commits the writes of concurrent callers together: one transaction, one WAL fsync.
///
/// Every registry write waits for its fsync (`synchronous = FULL`), and a disk does a few
/// thousand of those a second at best. So a caller that finds no commit running becomes
/// the leader: it takes every write queued so far, runs each in its own savepoint inside
/// one transaction, commits once and wakes the others. Writes that arrive meanwhile wait
/// for the next commit, which the first of them leads.
///
/// Each write keeps its own outcome: one that throws is rolled back to its savepoint and
/// its caller gets the error, while the rest of the batch commits. No caller hears of
/// success before the transaction holding its write is durable.
///
/// Callers block (they run on thread pools, never on an event loop); bodies must not
/// write to the registry themselves.
final class GroupCommit: Sendable {
    // The leader and its followers (`CallBatches`); each job's `error` is written by the
    // leader before its caller is woken, and read by that caller after.
    private let batches = CallBatches<Job, Void>()
    private let pool: DatabasePool

    private final class Job {
        let body: (Database) throws -> Void
        let durable: Bool
        var error: (any Error)?

        init(durable: Bool, _ body: @escaping (Database) throws -> Void) {
            self.durable = durable
            self.body = body
        }
    }

    init(pool: DatabasePool) {
        self.pool = pool
    }

    /// Runs `body` in the next shared transaction. With `durable: false` the caller does
    /// not wait for an fsync of its own: the write is durable with the next durable commit
    /// (the WAL is written in order), and a crash may lose it. For state that recovery
    /// rebuilds anyway, such as a delivery being claimed.
    func write<T>(durable: Bool = true, _ body: (Database) throws -> T) throws -> T {
        // The job does not outlive this call: it returns only once the leader ran it.
        try withoutActuallyEscaping(body) { body in
            var result: T?
            let job = Job(durable: durable) { db in result = try body(db) }
            try batches.make(job) { jobs in
                commit(jobs)
                return jobs.map { _ in () }
            }
            if let error = job.error { throw error }
            return result!
        }
    }

    /// Transactions run so far, and writes waiting for the next one.
    var counts: (transactions: Int, waiting: Int) {
        let counts = batches.counts
        return (counts.batches, counts.waiting)
    }

    private func commit(_ batch: [Job]) {
        let durable = batch.contains { $0.durable }
        do {
            try pool.writeWithoutTransaction { db in
                // Cached statements: these run for every transaction.
                if !durable { try db.cachedStatement(sql: "PRAGMA synchronous = NORMAL").execute() }
                defer { if !durable { try? db.cachedStatement(sql: "PRAGMA synchronous = FULL").execute() } }
                try db.inTransaction {
                    if batch.count == 1 {
                        // Alone, a write needs no savepoint: its error rolls back the transaction.
                        try batch[0].body(db)
                        return .commit
                    }
                    for job in batch {
                        do {
                            try db.inSavepoint {
                                try job.body(db)
                                return .commit
                            }
                        } catch {
                            job.error = error
                        }
                    }
                    return .commit
                }
            }
        } catch {
            // The commit itself failed: nothing of the batch is stored.
            for job in batch where job.error == nil { job.error = error }
        }
    }
}
