import ArgumentParser
import Foundation
import WharfCore
import WharfPKI
import WharfPostgres
import WharfStore

/// `wharf db`: the home's registry database.
struct DatabaseCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "db",
        abstract: "Move the home's registry to PostgreSQL, so several nodes can share it.",
        subcommands: [Copy.self]
    )

    struct Copy: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Copy the embedded registry into an empty PostgreSQL database and switch the home to it.",
            discussion: """
                Copies every partner, receipt, transfer and attempt, schedule, hook, ban, \
                revocation and audit event in one transaction, checks the counts, prints them, \
                then records the database in wharf.yml (database-url). Stop `wharf serve` first: \
                the home is locked while it copies. The SQLite file stays, renamed \
                wharf.sqlite.copied, as a way back. Refuses a database that is not empty, and \
                a home already on PostgreSQL; a refusal changes nothing.
                """
        )

        @OptionGroup var home: HomeOptions

        @Option(help: ArgumentHelp("The database: postgresql://USER@HOST:PORT/DB[?sslmode=disable|require|verify-full].", valueName: "url"))
        var to: String

        @Option(help: ArgumentHelp("A file whose first line is the database's password (else PGPASSWORD).", valueName: "file"))
        var databasePasswordFile: String?

        func run() throws {
            let home = home.resolved
            let settings = try home.settings()
            guard try home.database(settings) == .embedded else {
                throw WharfError.invalid(
                    "the home \(home.path) already uses PostgreSQL (\(PostgresLocation.redacted(settings["database-url"])))",
                    fix: "nothing to copy; `wharf nodes list` shows the nodes that share it"
                )
            }
            let lock = try HomeLock(home: home)
            let registry = try home.openRegistry()
            let location = try PostgresLocation(url: to, passwordFile: databasePasswordFile)
            let tables = try registry.exportForCopy()
            let store = try PostgresStore.open(location, node: NodeName.generated().rawValue)
            defer { store.close() }
            let counts = try store.importCopy(tables)
            try Self.switchSettings(of: home, to: to, passwordFile: databasePasswordFile)
            // Kept as it was, under a name no command opens: the way back.
            for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: home.registryPath + suffix) {
                guard rename(home.registryPath + suffix, home.registryPath + ".copied" + suffix) == 0 else {
                    throw WharfError(
                        .fileSystem, "the copy is in \(location) and wharf.yml names it, but \(home.registryPath)\(suffix) cannot be renamed",
                        fix: "rename it by hand; the home already uses PostgreSQL"
                    )
                }
            }
            withExtendedLifetime(lock) {}
            OperatorAudit.record(store, "db copy", "copied the embedded registry: \(counts.values.reduce(0, +)) rows")
            Console.print("Copied to \(location):")
            for table in TableRows.copied { Console.print("  \(table.padding(toLength: 20, withPad: " ", startingAt: 0)) \(counts[table] ?? 0)") }
            Console.print("The home now uses it (\(ConfigurationFile.name): database-url); the SQLite file is kept as \(Registry.fileName).copied.")
        }

        /// Sets `database-url` (and `database-password-file`) in the home's wharf.yml,
        /// in place of the lines that had them, commented out or not.
        static func switchSettings(of home: WharfHome, to url: String, passwordFile: String?) throws(WharfError) {
            let path = "\(home.path)/\(ConfigurationFile.name)"
            let existing = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            var lines = existing.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
            if lines.last == "" { lines.removeLast() }
            let quoted = { (value: String) in "'\(value.replacingOccurrences(of: "'", with: "''"))'" }
            for (key, value) in [("database-url", url), ("database-password-file", passwordFile)] {
                let line = value.map { "\(key): \(quoted($0))" }
                let place = lines.firstIndex { $0.hasPrefix("\(key):") || $0.hasPrefix("# \(key):") }
                switch (place, line) {
                case (let place?, let line?): lines[place] = line
                case (nil, let line?): lines.append(line)
                default: break
                }
            }
            let text = lines.joined(separator: "\n") + "\n"
            _ = try ConfigurationFile.parse(text, path: path)
            try AtomicFile.write(text, to: path, mode: 0o640)
        }
    }
}
