import ArgumentParser
import Foundation
import WharfCore
import WharfPKI
import X509

/// `wharf ca`: Wharf's own certificate authority.
struct CA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Show Wharf's CA and certificates, or renew the server certificate.",
        subcommands: [Show.self, ReissueServer.self, Revoke.self]
    )

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print subject, SHA-256 fingerprint and expiry of the CA, server and client certificates.")

        @OptionGroup var home: HomeOptions

        func run() throws {
            let pki = home.resolved.pki
            let authority = try pki.loadAuthority()
            let server = try pki.loadServer()
            let client = try pki.loadClient()
            for (label, certificate) in [("CA", authority.certificate), ("Server", server.certificate), ("Client", client.certificate)] {
                Console.print("\(label) certificate")
                Console.print("  subject      \(certificate.subject)")
                Console.print("  sha256       \(certificate.fingerprint.hex)")
                Console.print("  expires      \(certificate.notValidAfter.formatted(.iso8601))")
                if let names = certificate.alternativeNames, !names.isEmpty {
                    Console.print("  names        \(names.joined(separator: ", "))")
                }
            }
            Console.print("CA file: \(pki.caCertificatePath)")
        }
    }

    struct ReissueServer: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reissue-server",
            abstract: "Replace the server certificate with a new one signed by Wharf's CA.",
            discussion: """
                Without --server-name the new certificate covers the same names as the current \
                one. New connections use it; a running server picks it up without a restart.
                """
        )

        @OptionGroup var home: HomeOptions

        @Option(name: .customLong("server-name"), help: ArgumentHelp("A DNS name or IP address to cover (repeatable); replaces the current extra names.", valueName: "name"))
        var serverNames: [String] = []

        @Option(help: "Validity in days (at most 366 keeps within Mozilla's intermediate profile).")
        var days: Int = 365

        func run() throws {
            let pki = home.resolved.pki
            let authority = try pki.loadAuthority()
            let current = try pki.loadServer()
            let names = serverNames.isEmpty
                ? (current.certificate.alternativeNames ?? HostNames.serverCertificateNames(extra: []))
                : HostNames.serverCertificateNames(extra: serverNames)
            let server = try authority.issueServerCertificate(hostNames: names, keyType: KeyType(of: current.privateKey), days: days)
            try pki.replaceServer(server)
            OperatorAudit.record(try home.resolved.openRegistry(), "ca reissue-server", "server certificate sha256 \(server.certificate.fingerprint.hex) for \(names.joined(separator: ", "))")
            Console.print("Reissued the server certificate")
            Console.print("  names    \(names.joined(separator: ", "))")
            Console.print("  sha256   \(server.certificate.fingerprint.hex)")
            Console.print("  expires  \(server.certificate.notValidAfter.formatted(.iso8601))")
        }
    }
}
