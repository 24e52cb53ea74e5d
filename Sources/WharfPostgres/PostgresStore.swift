import Dispatch
import Foundation
import Logging
import PostgresNIO
import Synchronization
import WharfCore

/// The registry of several nodes: the domain's ports over one PostgreSQL database, which
/// every node of a gateway shares.
///
/// The ports are blocking (their callers run on thread pools); this store runs each call
/// on postgres-nio's `PostgresClient` and waits for it. A call waits at most `timeout` for
/// a connection: a database that cannot be reached gives an `unavailable` error naming it,
/// not a hung thread. A statement that has started is not abandoned, since a write given
/// up on could still commit.
///
/// Never call it from a task of Swift's concurrency pool: block a thread of a thread pool.
///
/// The connection pool runs from `open` to `close`, since a gateway recovers through the
/// store before its services start. A running gateway hands the pool's end to its service
/// group: the store is a `Service` too (see `run()`).
public final class PostgresStore: Sendable {
    public let location: PostgresLocation
    /// This node's name: the owner of the claims it makes.
    public let node: String
    /// How long a claim holds (seconds) unless its owner renews it.
    public let lease: Double
    let client: PostgresClient
    let logger: Logger
    let timeout: Duration
    /// Whether the last call found the database unreachable: until one reaches it again,
    /// calls wait `outageTimeout` rather than `timeout`, so that an outage answers at once.
    private let unreachable = Atomic<Bool>(false)
    let running: Task<Void, Never>
    /// This node's finishes of deliveries, made several at a time (`finish`).
    let finishes = CallBatches<FinishStatement.Finish, Bool>(limit: 64)
    /// This node's receipts, committed several at a time (`commit`).
    let receiptCommits = CallBatches<ReceiptCommitStatement.Pending, Bool>(limit: 64)

    /// How long a call waits for a connection while the database is known to be down.
    static let outageTimeout: Duration = .seconds(1)

    /// Connects to `location` and applies the migrations it lacks (see `PostgresMigrations`):
    /// whichever node takes the migration lock first applies them, the others wait for it.
    /// Refuses a database a newer Wharf migrated.
    public static func open(
        _ location: PostgresLocation, node: String, lease: Double = 60, logger: Logger = Logger(label: "wharf.postgres"),
        timeout: Duration = .seconds(10)
    ) throws(WharfError) -> PostgresStore {
        let store = PostgresStore(
            location: location, node: node, lease: lease,
            client: PostgresClient(configuration: try location.clientConfiguration(), backgroundLogger: Self.quiet),
            logger: logger, timeout: timeout
        )
        do {
            try store.probe()
            try store.migrate()
        } catch {
            store.close()
            throw error
        }
        return store
    }

    private init(location: PostgresLocation, node: String, lease: Double, client: PostgresClient, logger: Logger, timeout: Duration) {
        self.location = location
        self.node = node
        self.lease = lease
        self.client = client
        self.logger = logger
        self.timeout = timeout
        // On the calls' executor, as the wait in `close()` is: a caller blocking every
        // thread of Swift's concurrency pool (two, on two cores) must not keep the pool
        // from ending.
        running = Task.detached(executorPreference: Self.executor) { await client.run() }
    }

    /// Closes every connection; the store answers nothing after this. Blocks this thread
    /// (from a task, let `run()` end instead).
    public func close() {
        running.cancel()
        let done = DispatchSemaphore(value: 0)
        let running = running
        Task.detached(executorPreference: Self.executor) {
            await running.value
            done.signal()
        }
        done.wait()
    }

    /// postgres-nio logs a query's binds at debug level: client keys and passwords must
    /// never reach a log, so its own logging stays off.
    static let quiet = Logger(label: "wharf.postgres.client", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Connects once outside the pool, which retries a failing connection without saying
    /// why: a wrong password, a missing database or a refused TLS handshake is reported as
    /// what it is.
    func probe() throws(WharfError) {
        let configuration = try location.connectionConfiguration()
        try wait {
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: Self.quiet)
            try await connection.close()
        }
    }

    // MARK: Calls

    /// Runs `body` on a leased connection and returns what it returns, blocking this thread.
    func withConnection<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) throws(WharfError) -> T {
        let client = client
        let timeout = unreachable.load(ordering: .relaxed) ? min(timeout, Self.outageTimeout) : timeout
        let location = location
        return try wait {
            let leased = Leased()
            return try await withThrowingTaskGroup(of: T?.self) { group in
                group.addTask {
                    try await client.withConnection { connection in
                        leased.flag.store(true, ordering: .sequentiallyConsistent)
                        return try await body(connection)
                    }
                }
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    guard leased.flag.load(ordering: .sequentiallyConsistent) == false else { return nil }
                    throw WharfError(
                        .unavailable, "PostgreSQL at \(location) gave no connection within \(timeout)",
                        fix: "check that the database is running and reachable from this node"
                    )
                }
                while let result = try await group.next() {
                    if let result {
                        group.cancelAll()
                        return result
                    }
                }
                preconditionFailure("the call's task ended without a result")
            }
        }
    }

    /// Runs `body` in one transaction (`BEGIN` … `COMMIT`, rolled back if it throws).
    func transaction<T: Sendable>(_ body: @escaping @Sendable (PostgresConnection) async throws -> T) throws(WharfError) -> T {
        let logger = Self.quiet
        return try withConnection { connection in
            try await connection.withTransaction(logger: logger) { connection in try await body(connection) }
        }
    }

    private func wait<T: Sendable>(_ body: @escaping @Sendable () async throws -> T) throws(WharfError) -> T {
        let box = ResultBox<T>()
        let done = DispatchSemaphore(value: 0)
        // On an executor of its own: the thread waiting below may be one of Swift's
        // concurrency pool, and the call must not need another to finish.
        Task.detached(executorPreference: Self.executor) {
            do {
                box.result = .success(try await body())
            } catch {
                box.result = .failure(error)
            }
            done.signal()
        }
        done.wait()
        switch box.result! {
        case .success(let value):
            unreachable.store(false, ordering: .relaxed)
            return value
        case .failure(let error):
            let translated = Self.translate(error, location: location)
            unreachable.store(translated.code == .unavailable, ordering: .relaxed)
            throw translated
        }
    }

    /// A `WharfError` for what postgres-nio threw, naming the database by its redacted
    /// URL and never carrying a query's values.
    static func translate(_ error: any Error, location: PostgresLocation) -> WharfError {
        if let error = error as? WharfError { return error }
        if let error = error as? PostgresTransactionError,
           let cause = error.closureError ?? error.beginError ?? error.commitError ?? error.rollbackError {
            return translate(cause, location: location)
        }
        if let error = error as? PSQLError {
            if let info = error.serverInfo {
                let state = info[.sqlState] ?? ""
                let message = info[.message] ?? "no message"
                switch state {
                case "23505":
                    return WharfError(.conflict, "PostgreSQL refused a duplicate: \(message)")
                case "28000":
                    // pg_hba.conf has no line for this connection: the host, the user, or
                    // TLS (a server that accepts only `hostssl`).
                    return WharfError(
                        .database, "PostgreSQL at \(location) refused the login: \(message)",
                        fix: "check the server's pg_hba.conf; if it accepts only TLS (hostssl), set sslmode=require or sslmode=verify-full in the database URL"
                    )
                case _ where state.hasPrefix("28"):
                    return WharfError(
                        .database, "PostgreSQL at \(location) refused the login: \(message)",
                        fix: "check the user, and the password given in the URL, --database-password-file or PGPASSWORD"
                    )
                case "3D000":
                    return WharfError(
                        .database, "PostgreSQL at \(location) has no such database: \(message)",
                        fix: "create it first (`createdb \(location.database)`)"
                    )
                case "53100":
                    return WharfError(.insufficientStorage, "PostgreSQL's disk is full: \(message)", fix: "free space on the database server")
                case _ where state.hasPrefix("08") || state.hasPrefix("57P"):
                    return WharfError(.unavailable, "PostgreSQL at \(location) is not available: \(message)", fix: "check that the database is running")
                default:
                    return WharfError(.database, "PostgreSQL refused the change: \(message) (SQLSTATE \(state))")
                }
            }
            if let refusal = tlsRefusal(error, location: location) { return refusal }
            switch error.code {
            case .connectionError, .serverClosedConnection, .clientClosedConnection, .failedToAddSSLHandler:
                let cause = error.underlying.map { ": \($0)" } ?? ""
                return WharfError(
                    .unavailable, "cannot reach PostgreSQL at \(location)\(cause)",
                    fix: "check that the database is running and reachable from this node, and its sslmode"
                )
            default:
                return WharfError(.database, "PostgreSQL failed: \(error.code)")
            }
        }
        if error is CancellationError {
            return WharfError(.unavailable, "the call to PostgreSQL at \(location) was cancelled")
        }
        return WharfError(.unavailable, "cannot reach PostgreSQL at \(location): \(String(describing: type(of: error)))")
    }
}

/// Runs the calls' tasks on a thread of their own (they only hand work to postgres-nio's
/// event loops and back, never block), so that a caller blocking a thread of Swift's
/// concurrency pool cannot starve the call it waits for.
final class CallExecutor: TaskExecutor {
    private let queue = DispatchQueue(label: "wharf.postgres.calls")

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        queue.async { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }
}

extension PostgresStore {
    static let executor = CallExecutor()
}

/// Whether a call has its connection: past that, it is not timed out.
private final class Leased: Sendable {
    let flag = Atomic<Bool>(false)
}

/// The outcome of a call, handed from its task to the thread waiting for it (the
/// semaphore orders the write before the read).
private final class ResultBox<T>: @unchecked Sendable {
    var result: Result<T, any Error>?
}

extension PostgresConnection {
    /// Runs `query` and reads its answer to the end, so the next statement on this
    /// connection starts after it.
    func run(_ query: PostgresQuery) async throws {
        for try await _ in try await self.query(query, logger: PostgresStore.quiet) {}
    }
}
