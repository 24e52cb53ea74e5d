import Foundation
import NIOSSL
import PostgresNIO
import WharfCore

/// Where a shared registry lives: a `postgresql://USER@HOST:PORT/DB?sslmode=…` URL and the
/// password, which comes from the URL, a file (`--database-password-file`) or `PGPASSWORD`,
/// in that order.
///
/// `description` never shows the password: it is what logs, errors and `wharf config show`
/// print. TLS to the database is `sslmode`: `disable`, `require` (encrypted, the server not
/// verified) or `verify-full` (the server's certificate checked against `sslrootcert`, or
/// the system's CAs, and its names against the host; an address it names passes when it
/// is the address connected to, as NIOSSL checks it). Without one, a loopback host is
/// `disable` and any other host `verify-full`: a database across a network is never
/// reached in clear text unless the URL says so.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, CaseIterable {
        case disable
        case require
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var tls: TLSMode
    /// The CA file that verifies the server with `verify-full` (`sslrootcert`).
    public var rootCertificatePath: String?
    var password: String?

    /// Parses `url`. The password is the URL's, else the first line of `passwordFile`,
    /// else `environment["PGPASSWORD"]`; none is fine for a server that trusts the host.
    public init(url: String, passwordFile: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) throws(WharfError) {
        let shown = Self.redacted(url)
        let fix = "write it as postgresql://USER@HOST:PORT/DATABASE (a password through --database-password-file or PGPASSWORD)"
        guard let components = URLComponents(string: url), let scheme = components.scheme,
              ["postgresql", "postgres"].contains(scheme.lowercased())
        else {
            throw WharfError(.invalidInput, "\(quoted(shown)) is not a postgresql:// URL", fix: fix)
        }
        guard let host = components.host, !host.isEmpty else {
            throw WharfError(.invalidInput, "the database URL \(quoted(shown)) names no host", fix: fix)
        }
        guard let user = components.user, !user.isEmpty else {
            throw WharfError(.invalidInput, "the database URL \(quoted(shown)) names no user", fix: fix)
        }
        let database = String(components.path.drop(while: { $0 == "/" }))
        guard !database.isEmpty, !database.contains("/") else {
            throw WharfError(.invalidInput, "the database URL \(quoted(shown)) names no database", fix: fix)
        }
        self.host = host.hasPrefix("[") ? String(host.dropFirst().dropLast()) : host
        self.port = components.port ?? 5432
        self.user = user
        self.database = database
        var tls: TLSMode? = nil
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = item.value.flatMap(TLSMode.init(rawValue:)) else {
                    throw WharfError(
                        .invalidInput, "sslmode=\(quoted(item.value ?? "")) is not one Wharf knows",
                        fix: "use sslmode=disable, sslmode=require or sslmode=verify-full"
                    )
                }
                tls = mode
            case "sslrootcert":
                rootCertificatePath = item.value
            default:
                throw WharfError(
                    .invalidInput, "the database URL has a parameter Wharf does not know: \(quoted(item.name))",
                    fix: "the parameters are sslmode and sslrootcert"
                )
            }
        }
        self.tls = tls ?? (Self.isLoopback(self.host) ? .disable : .verifyFull)
        if let password = components.password, !password.isEmpty {
            self.password = password
        } else if let passwordFile {
            guard let text = try? String(contentsOfFile: passwordFile, encoding: .utf8) else {
                throw WharfError(
                    .unreadableFile, "cannot read the database password file \(quoted(passwordFile))",
                    fix: "check the path and that this user may read it"
                )
            }
            self.password = String(text.prefix(while: { $0 != "\n" && $0 != "\r" }))
        } else {
            self.password = environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        }
    }

    /// The URL without its password: what Wharf prints and records.
    public var description: String {
        var text = "postgresql://\(user)@\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)?sslmode=\(tls.rawValue)"
        if let rootCertificatePath { text += "&sslrootcert=\(rootCertificatePath)" }
        return text
    }

    /// Whether a password was given, without giving it.
    public var hasPassword: Bool { password != nil }

    /// `url` with any password replaced by `***`, for an error about the URL itself.
    public static func redacted(_ url: String) -> String {
        guard let at = url.lastIndex(of: "@"), let schemeEnd = url.range(of: "://")?.upperBound, schemeEnd < at,
              let colon = url[schemeEnd..<at].firstIndex(of: ":")
        else { return url }
        return String(url[..<url.index(after: colon)]) + "***" + String(url[at...])
    }

    static func isLoopback(_ host: String) -> Bool {
        host == "localhost" || host == "::1" || host.hasPrefix("127.")
    }

    /// The TLS postgres-nio connects with; `nil` for `disable`.
    func tlsConfiguration() throws(WharfError) -> TLSConfiguration? {
        switch tls {
        case .disable:
            return nil
        case .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            return configuration
        case .verifyFull:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .fullVerification
            if let rootCertificatePath {
                guard FileManager.default.isReadableFile(atPath: rootCertificatePath) else {
                    throw WharfError(
                        .unreadableFile, "cannot read the database's CA file \(quoted(rootCertificatePath)) (sslrootcert)",
                        fix: "check the path in the database URL"
                    )
                }
                configuration.trustRoots = .file(rootCertificatePath)
            }
            return configuration
        }
    }

    /// The pool's configuration.
    func clientConfiguration() throws(WharfError) -> PostgresClient.Configuration {
        var configuration = PostgresClient.Configuration(
            host: host, port: port, username: user, password: password, database: database,
            tls: try tlsConfiguration().map { .require($0) } ?? .disable
        )
        configuration.options.connectTimeout = .seconds(5)
        configuration.options.maximumConnections = 10
        return configuration
    }

    /// The configuration of one connection of its own (the store's first, which reports
    /// why a connection fails where the pool would only retry).
    func connectionConfiguration() throws(WharfError) -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        if let configuration = try tlsConfiguration() {
            do {
                tls = .require(try NIOSSLContext(configuration: configuration))
            } catch {
                throw WharfError(.cryptography, "cannot set up TLS to the database: \(error)", fix: "check sslrootcert in the database URL")
            }
        } else {
            tls = .disable
        }
        var configuration = PostgresConnection.Configuration(
            host: host, port: port, username: user, password: password, database: database, tls: tls
        )
        configuration.options.connectTimeout = .seconds(5)
        return configuration
    }
}

/// Text from outside, quoted and escaped for a message.
func quoted(_ text: String) -> String {
    "\"" + EscapedText.terminal(text) + "\""
}
