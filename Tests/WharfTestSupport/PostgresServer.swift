import Foundation

/// A PostgreSQL 15 server of a test's own (Debian's `postgresql` package): `initdb` into
/// a temporary directory owned by the `postgres` user (PostgreSQL refuses to run as root),
/// then `postgres` itself as the test's child on a free loopback port (not `pg_ctl`,
/// whose daemon would outlive a test that fails). Connections over TCP need `password` (SCRAM); the
/// test's own `psql` goes through the directory's Unix socket as the superuser.
public final class PostgresServer: @unchecked Sendable {
    public static let binaries = "/usr/lib/postgresql/15/bin"

    public let directory: TemporaryDirectory
    public let port: Int
    public let password = "pg-\(UUID().uuidString.prefix(8))"
    public let database: String
    private let lock = NSLock()
    private var process: BackgroundProcess?

    /// The database's URL, without its password (give it through PGPASSWORD).
    public var url: String { "postgresql://postgres@127.0.0.1:\(port)/\(database)" }
    /// The same with the password in it.
    public var urlWithPassword: String { "postgresql://postgres:\(password)@127.0.0.1:\(port)/\(database)" }

    /// Whether this machine has the server's binaries.
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: "\(binaries)/initdb") }

    public init(database: String = "wharf") async throws {
        directory = try TemporaryDirectory("wharf-pg")
        self.database = database
        port = try Self.freePort()
        let d = directory.path
        try directory.write("pwfile", password + "\n")
        if getuid() == 0 { try Self.check(Command.run("chown", ["-R", "postgres:postgres", d]), "chown") }
        try Self.check(
            asPostgres(
                "initdb", ["-D", "\(d)/data", "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                           "--pwfile=\(d)/pwfile", "--no-sync", "--no-instructions"]
            ),
            "initdb"
        )
        try await start()
        try Self.check(Command.run("\(Self.binaries)/psql", psqlArguments(database: "postgres") + ["-c", "CREATE DATABASE \(database)"]), "createdb")
    }

    deinit {
        guard let process = lock.withLock({ self.process }), process.isRunning else { return }
        process.signal(SIGINT)
        for _ in 0..<1000 where process.isRunning { usleep(10_000) }
    }

    /// Starts the server and waits until it says it accepts connections.
    public func start() async throws {
        let d = directory.path
        // fsync off: these servers live for one test, and a test kills Wharf, never them.
        let arguments = ["-D", "\(d)/data", "-k", d, "-p", "\(port)", "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        let server = getuid() == 0
            ? try BackgroundProcess("setpriv", ["--reuid=postgres", "--regid=postgres", "--clear-groups", "--", "\(Self.binaries)/postgres"] + arguments)
            : try BackgroundProcess("\(Self.binaries)/postgres", arguments)
        lock.withLock { process = server }
        try await Wait.until(timeout: .seconds(60), "PostgreSQL to start: \(server.stderr)") {
            guard server.isRunning else { throw PostgresServerError(description: "PostgreSQL exited: \(server.stderr)") }
            return server.stderr.contains("database system is ready to accept connections")
        }
    }

    /// Stops the server as `pg_ctl -m fast` does (SIGINT: connections are closed, nothing
    /// committed is lost) and waits until it has.
    public func stop() async throws {
        guard let server = lock.withLock({ process }) else { return }
        server.signal(SIGINT)
        _ = try await server.waitForExit(timeout: .seconds(60))
    }

    /// Runs `sql` as the superuser; returns what `psql` printed (unaligned, tuples only).
    @discardableResult
    public func psql(_ sql: String) throws -> String {
        let result = try Command.run("\(Self.binaries)/psql", psqlArguments(database: database) + ["-v", "ON_ERROR_STOP=1", "-c", sql])
        try Self.check(result, "psql")
        return result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func psqlArguments(database: String) -> [String] {
        ["-h", directory.path, "-p", "\(port)", "-U", "postgres", "-d", database, "-X", "-q", "-A", "-t"]
    }

    /// Runs a server tool as `postgres`, its output to a file: the server `pg_ctl` starts
    /// would otherwise hold the pipes open, and a reader of them would wait for ever.
    private func asPostgres(_ tool: String, _ arguments: [String]) throws -> CommandResult {
        let command = (getuid() == 0 ? ["runuser", "-u", "postgres", "--"] : []) + ["\(Self.binaries)/\(tool)"] + arguments
        let output = directory.file("\(tool).out")
        let status = try Command.run("sh", ["-c", "\"$@\" > \"$0\" 2>&1 < /dev/null", output] + command).status
        let printed = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        return CommandResult(status: status, stdout: printed, stderr: "")
    }

    private static func check(_ result: CommandResult, _ what: String) throws {
        guard result.succeeded else {
            throw PostgresServerError(description: "\(what) failed (\(result.status)): \(result.stderr)\(result.stdout)")
        }
    }

    private static func freePort() throws -> Int {
        let result = try Command.run("python3", ["-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"])
        guard let port = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw PostgresServerError(description: "no free port: \(result.stderr)")
        }
        return port
    }
}

public struct PostgresServerError: Error, CustomStringConvertible {
    public let description: String
}
