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
        abstract: "Show Wharf's CAs and certificates, split one CA in two, renew the server certificate, rotate keys, revoke.",
        subcommands: [
            Show.self, Status.self, Split.self, TrustBundle.self, ReissueServer.self, RotateKey.self, Revoke.self,
            RevocationListCommand.self,
        ]
    )

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print subject, SHA-256 fingerprint, expiry and key pin of the CAs, server and client certificates, and the pins of staged keys."
        )

        @OptionGroup var home: HomeOptions

        func run() throws {
            let pki = home.resolved.pki
            let authority = try pki.loadAuthority()
            let identity = try pki.loadIdentityAuthority()
            var entries: [(label: String, certificate: Certificate, staged: Certificate.PrivateKey?)] = [
                (identity == nil ? "CA" : "Partner CA", authority.certificate, nil),
            ]
            if let identity {
                entries.append(("Identity CA", identity.certificate, nil))
            }
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
            Console.print("Partners trust: \(try Status.trustFiles(pki).joined(separator: " and "))")
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Say whether one CA signs partners' certificates and Wharf's own, or two separate ones do, and what partners must trust."
        )

        @OptionGroup var home: HomeOptions

        @Flag(help: "Print JSON.")
        var json = false

        func run() throws {
            let pki = home.resolved.pki
            let layout = try pki.layout()
            let authority = try pki.loadAuthority().certificate
            let identity = try pki.loadIdentityAuthority()?.certificate
            let trust = try pki.partnerTrust()
            if json {
                func describe(_ certificate: Certificate) -> [String: Any] {
                    ["subject": certificate.subject.description, "sha256": certificate.fingerprint.hex,
                     "not_after": certificate.notValidAfter.utcTimestamp()]
                }
                var object: [String: Any] = [
                    "layout": Self.code(layout), "partner_ca": describe(authority),
                    "partners_trust": trust.map { $0.fingerprint.hex },
                ]
                object["identity_ca"] = identity.map(describe) ?? NSNull()
                let data = try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys])
                Console.print(String(decoding: data, as: UTF8.self))
                return
            }
            func line(_ label: String, _ certificate: Certificate) {
                Console.print("  \(label)\(EscapedText.terminal(certificate.subject.description))  sha256 \(certificate.fingerprint.hex)")
            }
            switch layout {
            case .oneCA:
                Console.print("One CA signs partners' client certificates and Wharf's own server and client certificates.")
                line("CA           ", authority)
                Console.print("A partner that trusts it to authenticate Wharf accepts every other partner's certificate too.")
                Console.print("Next: `wharf ca split` makes an identity CA for Wharf's own certificates; partners then trust both until you retire the old one.")
            case .overlap:
                Console.print("Splitting: an identity CA exists, but the old CA still signs Wharf's server and client certificates.")
                line("partner CA   ", authority)
                if let identity { line("identity CA  ", identity) }
                Console.print("Partners trust both meanwhile (`wharf ca trust-bundle` prints them; new bundles carry both).")
                Console.print("Next: once every partner trusts the identity CA, `wharf ca split --retire-old` moves Wharf's certificates to it.")
            case .separate:
                Console.print("Separate CAs: the partner CA signs partners' client certificates, the identity CA Wharf's own.")
                line("partner CA   ", authority)
                if let identity { line("identity CA  ", identity) }
            }
            Console.print("Partners trust: \(try Self.trustFiles(pki).joined(separator: " and "))")
        }

        static func code(_ layout: PKIDirectory.Layout) -> String {
            switch layout {
            case .oneCA: "one_ca"
            case .overlap: "overlap"
            case .separate: "separate"
            }
        }

        static func trustFiles(_ pki: PKIDirectory) throws(WharfError) -> [String] {
            switch try pki.layout() {
            case .oneCA: [pki.caCertificatePath]
            case .overlap: [pki.identityCertificatePath, pki.caCertificatePath]
            case .separate: [pki.identityCertificatePath]
            }
        }
    }

    struct Split: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Give a home with one CA a separate identity CA for Wharf's own certificates, in two steps.",
            discussion: """
                In a home made before Wharf had two CAs, one CA signs partners' client \
                certificates and Wharf's own, so a partner that trusts it to authenticate Wharf \
                also accepts every other partner's certificate. \
                1. `wharf ca split` creates an identity CA (pki/identity-ca.crt). Nothing changes \
                for partners yet: Wharf keeps its certificates, and the old CA stays the partner \
                CA, so every partner certificate keeps working. New bundles carry both CAs in \
                ca.crt and the truststore; send `wharf ca trust-bundle` to partners that have one \
                already. \
                2. Once every partner trusts the identity CA, `wharf ca split --retire-old` \
                reissues the server and client certificates from it (keeping their keys, so pins \
                stay valid). Running servers and deliveries pick them up without a restart; \
                partners may then stop trusting the old CA.
                """
        )

        @OptionGroup var home: HomeOptions

        @Flag(help: "Step 2: reissue Wharf's server and client certificates from the identity CA.")
        var retireOld = false

        @Option(help: "With --retire-old: validity of the reissued certificates in days.")
        var days: Int = 365

        func run() throws {
            let home = home.resolved
            let pki = home.pki
            let layout = try pki.layout()
            if !retireOld {
                guard layout == .oneCA else {
                    throw WharfError(
                        .conflict, layout == .overlap
                            ? "this home has an identity CA already; Wharf's certificates move to it with --retire-old"
                            : "this home has separate partner and identity CAs already; nothing was changed",
                        fix: "`wharf ca status` says where the home stands"
                    )
                }
                let authority = try pki.loadAuthority()
                let identity = try CertificateAuthority.create(
                    commonName: CertificateAuthority.uniqueCommonName("identity"), organization: authority.organization,
                    keyType: KeyType(of: authority.keyed.privateKey)
                )
                try pki.addIdentityAuthority(identity)
                OperatorAudit.record(
                    try home.openStore(), "ca split",
                    "created the identity CA sha256 \(identity.certificate.fingerprint.hex); partners trust both CAs until the old one is retired"
                )
                Console.print("Created the identity CA (\(pki.identityCertificatePath))")
                Console.print("  subject  \(EscapedText.terminal(identity.certificate.subject.description))")
                Console.print("  sha256   \(identity.certificate.fingerprint.hex)")
                Console.print("Nothing changed for partners yet. Send them `wharf ca trust-bundle` (both CAs) to trust;")
                Console.print("once every partner does, run `wharf ca split --retire-old`.")
                return
            }
            switch layout {
            case .oneCA:
                throw WharfError(.notFound, "this home has no identity CA yet", fix: "run `wharf ca split` first, then give partners time to trust it")
            case .separate:
                Console.print("Wharf's certificates are signed by the identity CA already; nothing changed.")
                return
            case .overlap:
                break
            }
            guard let identity = try pki.loadIdentityAuthority() else { return }
            let server = try pki.load(.server)
            let client = try pki.load(.client)
            let names = server.certificate.alternativeNames ?? HostNames.serverCertificateNames(extra: [])
            let newServer = try identity.issueServerCertificate(hostNames: names, key: server.privateKey, days: days)
            let newClient = try identity.reissueClientCertificate(client.certificate, key: client.privateKey, days: days)
            // The client first: the server certificate's issuer is what marks the home as
            // separate, so a failure in between leaves it overlapping, and a rerun finishes.
            try pki.replace(.client, with: newClient)
            try pki.replace(.server, with: newServer)
            OperatorAudit.record(
                try home.openStore(), "ca split",
                "retired the old CA from Wharf's own certificates: server sha256 \(newServer.certificate.fingerprint.hex), client sha256 \(newClient.certificate.fingerprint.hex), same keys"
            )
            Console.print("Wharf's server and client certificates are now signed by the identity CA (same keys, same pins).")
            Console.print("  server sha256  \(newServer.certificate.fingerprint.hex)")
            Console.print("  client sha256  \(newClient.certificate.fingerprint.hex)")
            Console.print("Partners may stop trusting the old CA (\(pki.caCertificatePath)); it keeps signing their client certificates.")
        }
    }

    struct TrustBundle: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "trust-bundle",
            abstract: "Print (or write) the CA certificates partners must trust to authenticate Wharf (PEM).",
            discussion: "The same as the ca.crt of a bundle `wharf partner issue` writes now: the identity CA, or both CAs while a split overlaps."
        )

        @OptionGroup var home: HomeOptions

        @Option(help: ArgumentHelp("Write the certificates to this file instead of printing them.", valueName: "file"))
        var out: String?

        func run() throws {
            let pem = try home.resolved.pki.partnerTrust().map(\.pemText).joined()
            if let out {
                try AtomicFile.write(pem, to: out, mode: 0o644)
                Console.print("Wrote what partners trust to \(out)")
            } else {
                Console.print(String(pem.dropLast()))
            }
        }
    }

    struct ReissueServer: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "reissue-server",
            abstract: "Replace the server certificate with a new one signed by Wharf's identity CA (or its one CA).",
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
            let authority = try pki.ownCertificatesAuthority()
            let current = try pki.loadServer()
            let names = serverNames.isEmpty
                ? (current.certificate.alternativeNames ?? HostNames.serverCertificateNames(extra: []))
                : HostNames.serverCertificateNames(extra: serverNames)
            let key = newKey ? try KeyType(of: current.privateKey).generate() : current.privateKey
            let server = try authority.issueServerCertificate(hostNames: names, key: key, days: days)
            try pki.replaceServer(server)
            let keyNote = newKey ? "a new key, pin \(server.certificate.publicKeyPin)" : "the same key"
            OperatorAudit.record(
                try home.resolved.openStore(), "ca reissue-server",
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
                OperatorAudit.record(try home.openStore(), "ca rotate-key", "staged the next \(role) key, pin \(key.publicKey.pin)")
                Console.print("Staged the next \(role) key (\(pki.stagedKeyPath(role)))")
                Console.print("  current pin  \(current.certificate.publicKeyPin)")
                Console.print("  next pin     \(key.publicKey.pin)")
                Console.print("Send the next pin to partners that pin Wharf's \(role) key, then run `wharf ca rotate-key \(role) --activate`.")
            case .activate:
                guard let staged else {
                    throw WharfError(.notFound, "no \(role) key is staged", fix: "stage one first with `wharf ca rotate-key \(role) --stage`")
                }
                let authority = try pki.ownCertificatesAuthority()
                let reissued: KeyedCertificate
                switch role {
                case .server:
                    let names = current.certificate.alternativeNames ?? HostNames.serverCertificateNames(extra: [])
                    reissued = try authority.issueServerCertificate(hostNames: names, key: staged, days: days)
                case .client:
                    reissued = try authority.reissueClientCertificate(current.certificate, key: staged, days: days)
                }
                try pki.replace(role, with: reissued)
                try pki.discardStagedKey(role)
                OperatorAudit.record(
                    try home.openStore(), "ca rotate-key",
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
                OperatorAudit.record(try home.openStore(), "ca rotate-key", "discarded the staged \(role) key, pin \(staged.publicKey.pin)")
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
            let list = try RevocationListPublisher(pki: home.pki, store: try home.openStore()).publish()
            if let out {
                try AtomicFile.write(list.pemText, to: out, mode: 0o644)
                Console.print("Wrote the CRL to \(out): \(list.entries.count) revoked, next update \(list.nextUpdate.formatted(.iso8601))")
            } else {
                Console.print(String(list.pemText.dropLast()))
            }
        }
    }
}
