import Foundation
import GRDB
import WharfCore

/// The partner registry: an SQLite database in WAL mode, shared by `wharf serve` and the CLI.
///
/// A write made by one process is seen by the next read of another, which is how registry
/// changes take effect without a restart. Every method runs in one transaction: a refused
/// change leaves the registry exactly as it was.
public final class Registry: Sendable {
    private let pool: DatabasePool
    private let commits: GroupCommit

    /// The file name of the registry inside a Wharf home.
    public static let fileName = "wharf.sqlite"

    /// Creates a new registry at `path`; refuses if a file is already there.
    public static func create(at path: String) throws(WharfError) -> Registry {
        if FileManager.default.fileExists(atPath: path) {
            throw WharfError(.alreadyInitialized, "a registry already exists at \(path)")
        }
        let registry = try Registry(path: path)
        // The registry holds partners' client keys: readable by the owner only.
        chmod(path, 0o600)
        return registry
    }

    /// Opens the existing registry at `path`, applying any migration it lacks.
    public static func open(at path: String) throws(WharfError) -> Registry {
        guard FileManager.default.fileExists(atPath: path) else {
            throw WharfError(
                .notInitialized, "no Wharf registry at \(path)",
                fix: "run `wharf init` first, or point --home (or WHARF_HOME) at an initialised home"
            )
        }
        return try Registry(path: path)
    }

    private init(path: String) throws(WharfError) {
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        // A committed receipt must survive a power cut, not only a crash: sync the WAL on commit.
        configuration.prepareDatabase { db in
            try db.execute(sql: "PRAGMA synchronous = FULL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Migrations.migrator.migrate(pool)
        } catch {
            throw WharfError(.database, "cannot open the registry at \(path): \(error)")
        }
        commits = GroupCommit(pool: pool)
    }

    /// The names of the migrations applied, in order.
    public func appliedMigrations() throws(WharfError) -> [String] {
        try read { db in try Migrations.migrator.appliedMigrations(db) }
    }

    // MARK: Transactions

    func read<T>(_ body: (Database) throws -> T) throws(WharfError) -> T {
        do {
            return try pool.read(body)
        } catch {
            throw Self.translate(error)
        }
    }

    /// Runs `body` in a transaction shared with the writes of concurrent callers (see
    /// `GroupCommit`); returns once that transaction is durable (or, with `durable: false`,
    /// committed).
    func write<T>(durable: Bool = true, _ body: (Database) throws -> T) throws(WharfError) -> T {
        do {
            return try commits.write(durable: durable, body)
        } catch {
            throw Self.translate(error)
        }
    }

    private static func translate(_ error: any Error) -> WharfError {
        if let error = error as? WharfError { return error }
        return WharfError(.database, "the registry refused the change: \(error)")
    }
}
