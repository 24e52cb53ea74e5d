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
        } catch {
            throw WharfError(.database, "cannot open the registry at \(path): \(error)")
        }
        try Self.refuseNewerSchema(pool, path: path)
        do {
            try Migrations.migrator.migrate(pool)
        } catch {
            throw WharfError(.database, "cannot open the registry at \(path): \(error)")
        }
        commits = GroupCommit(pool: pool)
    }

    /// A registry a newer Wharf migrated has migrations this build does not know: running on
    /// it could misread or damage rows, so this build refuses, saying what it needs.
    private static func refuseNewerSchema(_ pool: DatabasePool, path: String) throws(WharfError) {
        let applied: [String]
        do {
            // On the writer, which runs the migrations next: a reader opened now would keep
            // the schema as it was before them.
            applied = try pool.writeWithoutTransaction { db in
                try db.tableExists("grdb_migrations") ? try String.fetchAll(db, sql: "SELECT identifier FROM grdb_migrations") : []
            }
        } catch {
            throw WharfError(.database, "cannot open the registry at \(path): \(error)")
        }
        let known = Set(Migrations.migrator.migrations)
        if let unknown = applied.first(where: { !known.contains($0) }) {
            throw WharfError(
                .conflict,
                "the registry at \(path) was migrated by a newer Wharf (migration \(unknown)); this build knows up to \(Migrations.migrator.migrations.last ?? "none")",
                fix: "run the newer Wharf, or restore the backup taken before the upgrade (`wharf restore`)"
            )
        }
    }

    /// Writes a consistent copy of the registry to a new file at `path` with SQLite's
    /// online backup, while other processes go on reading and writing. The copy is a single
    /// file (no WAL). Returns how many rows its main tables hold.
    public func backup(to path: String) throws(WharfError) -> [String: Int] {
        do {
            let destination = try DatabaseQueue(path: path)
            try pool.backup(to: destination)
            let counts = try destination.writeWithoutTransaction { db in
                try db.execute(sql: "PRAGMA journal_mode = DELETE")
                return try Self.rowCounts(db)
            }
            try destination.close()
            return counts
        } catch {
            throw WharfError(.database, "cannot back up the registry to \(path): \(error)")
        }
    }

    /// Refuses a damaged registry (SQLite's `quick_check`), naming the first problem.
    public func checkIntegrity() throws(WharfError) {
        let problems: [String]
        do {
            problems = try pool.read { db in try String.fetchAll(db, sql: "PRAGMA quick_check(5)") }
        } catch {
            throw WharfError(.database, "the registry is damaged: \(error)", fix: "restore it from a backup (`wharf restore`)")
        }
        guard problems == ["ok"] else {
            throw WharfError(
                .database, "the registry is damaged: \(problems.first ?? "quick_check gave no answer")",
                fix: "restore it from a backup (`wharf restore`)"
            )
        }
    }

    /// How many rows the main tables hold.
    public func rowCounts() throws(WharfError) -> [String: Int] {
        try read(Self.rowCounts)
    }

    private static func rowCounts(_ db: Database) throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for table in ["partner", "partner_identity", "receipt", "transfer", "delivery_attempt", "schedule", "audit_event"]
        where try db.tableExists(table) {
            counts[table] = try Int.fetchOne(db, sql: "SELECT count(*) FROM \(table)") ?? 0
        }
        return counts
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
        if let error = error as? DatabaseError, error.resultCode == .SQLITE_FULL {
            return WharfError(.insufficientStorage, "the registry's disk is full: \(error.message ?? "SQLITE_FULL")", fix: "free space on the home's file system")
        }
        return WharfError(.database, "the registry refused the change: \(error)")
    }
}

extension Registry {
    /// Every row of `table` (one of `TableRows.copied`), in the order they were written,
    /// read in one transaction with the others when called inside `exportForCopy`.
    public func exportForCopy() throws(WharfError) -> [TableRows] {
        try read { db in
            try TableRows.copied.map { table in
                let statement = try db.makeStatement(sql: "SELECT * FROM \(table) ORDER BY rowid")
                let columns = statement.columnNames
                let rows = try Row.fetchAll(statement).map { row in
                    columns.map { column -> TableRows.Value in
                        switch (row[column] as DatabaseValue).storage {
                        case .null: .null
                        case .int64(let value): .integer(value)
                        case .double(let value): .real(value)
                        case .string(let value): .text(value)
                        case .blob(let data): .text(String(decoding: data, as: UTF8.self))
                        }
                    }
                }
                return TableRows(table: table, columns: columns, rows: rows)
            }
        }
    }
}

/// Everything an operator's command reads and changes: see `RegistryAdministration`.
extension Registry: RegistryAdministration {}
