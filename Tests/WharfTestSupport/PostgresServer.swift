import Foundation

/// A PostgreSQL 15 server of a test's own (Debian's `postgresql` package): `initdb` into
/// a temporary directory owned by the `postgres` user (PostgreSQL refuses to run as root),
/// then `postgres` itself as the test's child on a free loopback port (not `pg_ctl`,
/// whose daemon would outlive a test that fails). Connections over TCP need `password` (SCRAM); the
/// test's own `psql` goes through the directory's Unix socket as the superuser.
///
/// With `tls`, the server speaks TLS with a certificate that a CA of the test's own
/// (`caPath`) issued for `tls.names`, and refuses every TCP connection that is not TLS.
public final class PostgresServer: @unchecked Sendable {
    /// A server certificate's names (`subjectAltName`: an IP address or a DNS name each).
    public struct TLS: Sendable {
        public var names: [String]

        public init(names: [String]) {
            self.names = names
        }
    }

    public static let binaries = "/usr/lib/postgresql/15/bin"

    public let directory: TemporaryDirectory
    public let port: Int
    public let password = "pg-\(UUID().uuidString.prefix(8))"
    public let database: String
    public let tls: TLS?
    private let lock = NSLock()
    private var process: BackgroundProcess?

    /// The database's URL, without its password (give it through PGPASSWORD).
    public var url: String { "postgresql://postgres@127.0.0.1:\(port)/\(database)" }
    /// The same with the password in it.
    public var urlWithPassword: String { "postgresql://postgres:\(password)@127.0.0.1:\(port)/\(database)" }

    /// Whether this machine has the server's binaries.
    public static var isInstalled: Bool { FileManager.default.isExecutableFile(atPath: "\(binaries)/initdb") }

    /// The CA that issued the server's certificate (with `tls`).
    public var caPath: String { directory.file("ca.pem") }

    public init(database: String = "wharf", tls: TLS? = nil) async throws {
        directory = try TemporaryDirectory("wharf-pg")
        self.database = database
        self.tls = tls
        port = try Self.freePort()
        let d = directory.path
        try directory.write("pwfile", password + "\n")
        if let tls { try Self.issueServerCertificate(in: directory, names: tls.names) }
        if getuid() == 0 { try Self.check(Command.run("chown", ["-R", "postgres:postgres", d]), "chown") }
        try Self.check(
            asPostgres(
                "initdb", ["-D", "\(d)/data", "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
                           "--pwfile=\(d)/pwfile", "--no-sync", "--no-instructions"]
            ),
            "initdb"
        )
        if tls != nil {
            // TCP only over TLS: a connection in clear text finds no entry and is refused.
            // Written in place (not replaced), so the file stays the server's.
            try "local all all trust\nhostssl all all 127.0.0.1/32 scram-sha-256\n"
                .write(toFile: "\(d)/data/pg_hba.conf", atomically: false, encoding: .utf8)
        }
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
        var arguments = ["-D", "\(d)/data", "-k", d, "-p", "\(port)", "-c", "listen_addresses=127.0.0.1", "-c", "fsync=off"]
        if tls != nil {
            arguments += ["-c", "ssl=on", "-c", "ssl_cert_file=\(d)/server.pem", "-c", "ssl_key_file=\(d)/server.key"]
        }
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

    /// A CA (`ca.pem`) and a server certificate and key it issued for `names`
    /// (`server.pem`, `server.key`), made with `openssl` as an operator would.
    private static func issueServerCertificate(in directory: TemporaryDirectory, names: [String]) throws {
        let d = directory.path
        let alternativeNames = names.map { name in
            name.allSatisfy { $0.isNumber || $0 == "." || $0 == ":" } ? "IP:\(name)" : "DNS:\(name)"
        }.joined(separator: ",")
        try directory.write("server.ext", "subjectAltName=\(alternativeNames)\n")
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
        try check(Command.run("openssl", ["req", "-x509"] + curve + [
            "-keyout", "\(d)/ca.key", "-out", "\(d)/ca.pem", "-subj", "/CN=Database test CA", "-days", "2",
        ]), "openssl (CA)")
        try check(Command.run("openssl", ["req"] + curve + [
            "-keyout", "\(d)/server.key", "-out", "\(d)/server.csr", "-subj", "/CN=\(names.first ?? "db")",
        ]), "openssl (request)")
        try check(Command.run("openssl", [
            "x509", "-req", "-in", "\(d)/server.csr", "-CA", "\(d)/ca.pem", "-CAkey", "\(d)/ca.key", "-CAcreateserial",
            "-out", "\(d)/server.pem", "-days", "2", "-extfile", "\(d)/server.ext",
        ]), "openssl (certificate)")
        // PostgreSQL refuses a key others may read.
        guard chmod("\(d)/server.key", 0o600) == 0 else { throw PostgresServerError(description: "chmod server.key failed") }
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
