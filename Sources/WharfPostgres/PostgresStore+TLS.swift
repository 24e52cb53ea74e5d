import NIOSSL
import PostgresNIO
import WharfCore

extension PostgresStore {
    /// What went wrong with TLS to the database, as the operator can fix it: a server that
    /// does not speak it, a certificate no trusted CA issued, or one for another name.
    /// `nil` when `error` is not about TLS.
    static func tlsRefusal(_ error: PSQLError, location: PostgresLocation) -> WharfError? {
        if error.code == .sslUnsupported {
            return WharfError(
                .unavailable, "PostgreSQL at \(location) does not speak TLS, which sslmode=\(location.tls.rawValue) asks for",
                fix: "turn on ssl in the server's postgresql.conf, or, on a network you trust, set sslmode=disable in the database URL"
            )
        }
        guard let underlying = error.underlying else { return nil }
        if let extra = underlying as? NIOSSLExtraError, extra == .failedToValidateHostname {
            return WharfError(
                .cryptography, "the TLS certificate of PostgreSQL at \(location) does not name \(quoted(location.host))",
                fix: "connect by a name or address the database's certificate holds (its subjectAltName), or have it issued for \(quoted(location.host))"
            )
        }
        guard underlying is NIOSSLError else { return nil }
        let detail = String(describing: underlying)
        let trusted = location.rootCertificatePath.map { "the CA in \(quoted($0)) (sslrootcert)" } ?? "any of the system's CAs"
        if detail.contains("CERTIFICATE_VERIFY_FAILED") {
            return WharfError(
                .cryptography, "the TLS certificate of PostgreSQL at \(location) was not issued by \(trusted)",
                fix: "name the CA that issued the database's certificate with sslrootcert=FILE in the database URL; sslmode=require encrypts without checking the server"
            )
        }
        return WharfError(
            .cryptography, "the TLS handshake with PostgreSQL at \(location) failed: \(detail)",
            fix: "check the server's ssl settings, and sslmode and sslrootcert in the database URL"
        )
    }
}
