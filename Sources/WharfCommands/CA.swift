import ArgumentParser
import Foundation
import WharfCore
import WharfPKI
import X509

extension PKIDirectory.Role: ExpressibleByArgument {}

/// `wharf ca`: Wharf's own certificate authority.
struct CA: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ca",
        abstract: "Show Wharf's CA and certificates, renew the server certificate, rotate keys, revoke.",
        subcommands: [Show.self, ReissueServer.self, RotateKey.self, Revoke.self, RevocationListCommand.self]
    )

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print subject, SHA-256 fingerprint, expiry and key pin of the CA, server and client certificates, and the pins of staged keys."
        )

        @OptionGroup var home: HomeOptions

        func run() throws {
            let pki = home.resolved.pki
            let authority = try pki.loadAuthority()
            var entries: [(label: String, certificate: Certificate, staged: Certificate.PrivateKey?)] = [
                ("CA", authority.certificate, nil),
            ]
            for role in PKIDirectory.Role.allCases {
                entries.append((role == .server ? "Server" : "Client", try pki.load(role).certificate, try pki.stagedKey(role)))
            }
            for (label, certificate, staged) in entries {
                Console.print("\(label) certificate")
                Console.print("  subject      \(EscapedText.terminal(certificate.subject.description))")
                Console.print("  sha256       \(certificate.fingerprint.hex)")
                Console.print("  expires      \(certificate.notValidAfter.formatted(.iso8601))")
                if let names = certificate.alternativeNames, !names.isEmpty {
                    Console.print("  names        \(names.joined(separator: ", "))")
                }
                Console.print("  key pin      \(certificate.publicKeyPin)")
                if let staged {
                    Console.print("  staged pin   \(staged.publicKey.pin)  (not in use yet)")
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
                The new certificate keeps the current key, so partners that pin it (curl \
                --pinnedpubkey) keep working; --new-key generates a new one, which breaks them \
                until they add its pin (`wharf ca rotate-key server` switches keys without that \
                gap). Without --server-name the new certificate covers the same names as the \
                current one. New connections use it; a running server picks it up without a \
                restart.
                """
        )

        @OptionGroup var home: HomeOptions

        @Option(name: .customLong("server-name"), help: ArgumentHelp("A DNS name or IP address to cover (repeatable); replaces the current extra names.", valueName: "name"))
        var serverNames: [String] = []

        @Option(help: "Validity in days (at most 366 keeps within Mozilla's intermediate profile).")
        var days: Int = 365

        @Flag(help: "Generate a new key instead of keeping the current one.")
        var newKey = false

        func run() throws {
            let pki = home.resolved.pki
            let authority = try pki.loadAuthority()
            let current = try pki.loadServer()
            let names = serverNames.isEmpty
                ? (current.certificate.alternativeNames ?? HostNames.serverCertificateNames(extra: []))
                : HostNames.serverCertificateNames(extra: serverNames)
            let key = newKey ? try KeyType(of: current.privateKey).generate() : current.privateKey
            let server = try authority.issueServerCertificate(hostNames: names, key: key, days: days)
            try pki.replaceServer(server)
            let keyNote = newKey ? "a new key, pin \(server.certificate.publicKeyPin)" : "the same key"
            OperatorAudit.record(
                try home.resolved.openRegistry(), "ca reissue-server",
                "server certificate sha256 \(server.certificate.fingerprint.hex) for \(names.joined(separator: ", ")) with \(keyNote)"
            )
            Console.print("Reissued the server certificate")
            Console.print("  names    \(names.joined(separator: ", "))")
            Console.print("  sha256   \(server.certificate.fingerprint.hex)")
            Console.print("  expires  \(server.certificate.notValidAfter.formatted(.iso8601))")
            Console.print("  key pin  \(server.certificate.publicKeyPin)\(newKey ? "  (new: partners that pin the old key must add this pin)" : "  (unchanged)")")
        }
    }

    struct RotateKey: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "rotate-key",
            abstract: "Switch the server or client certificate to a new key in two steps, so partners that pin it never break.",
            discussion: """
                1. `wharf ca rotate-key server --stage` creates the next key (pki/server.next.key) \
                and prints its pin; send it to partners that pin Wharf's key, to add beside the \
                current one (curl: --pinnedpubkey 'sha256//OLD;sha256//NEW'). \
                2. Once they have, `--activate` reissues the certificate for the staged key (same \
                names or subject) and running servers and deliveries pick it up without a \
                restart. `--discard` drops a staged key instead. The client certificate is the \
                one Wharf presents to partners that set none of their own.
                """
        )

        enum Step: String, EnumerableFlag {
            case stage, activate, discard

            static func help(for value: Step) -> ArgumentHelp? {
                switch value {
                case .stage: "Create the next key and print its pin."
                case .activate: "Reissue the certificate for the staged key."
                case .discard: "Remove the staged key."
                }
            }
        }

        @OptionGroup var home: HomeOptions

        @Argument(help: "Which key: server or client.")
        var role: PKIDirectory.Role

        @Flag var step: Step

        @Option(help: "With --stage: the kind of the next key, p256 or rsa2048 (default: the current key's kind).")
        var keyType: KeyType?

        @Option(help: "With --activate: validity of the new certificate in days.")
        var days: Int = 365

        func validate() throws {
            if keyType != nil && step != .stage {
                throw ValidationError("--key-type goes with --stage")
            }
        }

        func run() throws {
            let home = home.resolved
            let pki = home.pki
            let current = try pki.load(role)
            let staged = try pki.stagedKey(role)
            switch step {
            case .stage:
                if let staged {
                    throw WharfError(
                        .conflict, "a \(role) key is already staged (pin \(staged.publicKey.pin))",
                        fix: "activate it with `wharf ca rotate-key \(role) --activate`, or drop it with --discard first"
                    )
                }
                let key = try (keyType ?? KeyType(of: current.privateKey)).generate()
                try pki.stage(key, for: role)
                OperatorAudit.record(try home.openRegistry(), "ca rotate-key", "staged the next \(role) key, pin \(key.publicKey.pin)")
                Console.print("Staged the next \(role) key (\(pki.stagedKeyPath(role)))")
                Console.print("  current pin  \(current.certificate.publicKeyPin)")
                Console.print("  next pin     \(key.publicKey.pin)")
                Console.print("Send the next pin to partners that pin Wharf's \(role) key, then run `wharf ca rotate-key \(role) --activate`.")
            case .activate:
                guard let staged else {
                    throw WharfError(.notFound, "no \(role) key is staged", fix: "stage one first with `wharf ca rotate-key \(role) --stage`")
                }
                let authority = try pki.loadAuthority()
                let reissued: KeyedCertificate
                switch role {
                case .server:
                    let names = current.certificate.alternativeNames ?? HostNames.serverCertificateNames(extra: [])
                    reissued = try authority.issueServerCertificate(hostNames: names, key: staged, days: days)
                case .client:
                    let subject = current.certificate.subject
                    reissued = try authority.issueClientCertificate(
                        commonName: subject.first(.RDNAttributeType.commonName) ?? "wharf",
                        organization: subject.first(.RDNAttributeType.organizationName) ?? authority.organization,
                        key: staged, days: days
                    )
                }
                try pki.replace(role, with: reissued)
                try pki.discardStagedKey(role)
                OperatorAudit.record(
                    try home.openRegistry(), "ca rotate-key",
                    "activated the staged \(role) key, pin \(staged.publicKey.pin); certificate sha256 \(reissued.certificate.fingerprint.hex)"
                )
                Console.print("The \(role) certificate now uses the staged key")
                Console.print("  sha256       \(reissued.certificate.fingerprint.hex)")
                Console.print("  expires      \(reissued.certificate.notValidAfter.formatted(.iso8601))")
                Console.print("  key pin      \(reissued.certificate.publicKeyPin)")
                Console.print("  retired pin  \(current.certificate.publicKeyPin)  (partners may remove it now)")
            case .discard:
                guard let staged else {
                    Console.print("No \(role) key is staged; nothing changed.")
                    return
                }
                try pki.discardStagedKey(role)
                OperatorAudit.record(try home.openRegistry(), "ca rotate-key", "discarded the staged \(role) key, pin \(staged.publicKey.pin)")
                Console.print("Discarded the staged \(role) key (pin \(staged.publicKey.pin))")
            }
        }
    }

    struct RevocationListCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "crl",
            abstract: "Write Wharf's CRL: the revoked certificates its CA issued, signed by the CA (PEM).",
            discussion: """
                The list is written to pki/crl.pem (also after every revocation, and daily by a \
                running `serve`; each list is valid for 7 days) and printed, or written to \
                --out. Point a TLS terminator in front of Wharf at it (nginx `ssl_crl`); the \
                admin listener serves the same list, DER-encoded, at /crl.
                """
        )

        @OptionGroup var home: HomeOptions

        @Option(help: ArgumentHelp("Write the list to this file too, instead of printing it.", valueName: "file"))
        var out: String?

        func run() throws {
            let home = home.resolved
            let list = try RevocationListPublisher(pki: home.pki, store: try home.openRegistry()).publish()
            if let out {
                try AtomicFile.write(list.pemText, to: out, mode: 0o644)
                Console.print("Wrote the CRL to \(out): \(list.entries.count) revoked, next update \(list.nextUpdate.formatted(.iso8601))")
            } else {
                Console.print(String(list.pemText.dropLast()))
            }
        }
    }
}
