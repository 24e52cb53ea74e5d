import Crypto
import Foundation
import Logging
import NIOPosix
import NIOSSL
import WharfCore
import WharfPKI

import X509

/// Builds the listener's TLS context and rebuilds it when what it is made of changes:
/// the server certificate (`wharf ca reissue-server`) or a partner's `--trust-ca`.
///
/// Each new connection asks for the current context, so a change is honoured on the
/// next connection without a restart; connections already open keep theirs. If a
/// rebuild fails (a broken file), the previous context keeps serving and the error is
/// logged.
actor TLSContextProvider {
    struct Current: Sendable {
        let context: NIOSSLContext
        /// What the handshake accepts, in place of BoringSSL's verification.
        var check: ClientCertificateCheck
        var anchors: TrustAnchors { check.anchors }
        /// Signs receipts with the server key of `context`.
        let signer: ReceiptSigner?
        /// What the handshake refuses although it chains to a trusted CA.
        var revoked = RevokedCertificates(revocations: [], wharfCA: nil)
    }

    private let pki: PKIDirectory
    private let store: any PartnerDirectory
    /// The partner generation, read on the thread pool; handshakes that arrive while one
    /// read runs share the next.
    private let generations: FreshReads<Int64>
    private let sendCANames: Bool
    private let logger: Logger
    private var cached: (key: String, current: Current)?
    /// The partners' CAs as last read, and the partner generation they were read at:
    /// read again only when a partner changed.
    private var partnerAnchorsRead: (
        generation: Int64, anchors: [(partner: PartnerName, pem: String)], revocations: [Revocation],
        lists: [(partner: PartnerName, path: String)], pinned: Set<CertificateFingerprint>
    )?
    /// Partners' CRLs as last read, and what each file was then (its inode, time and size).
    private var partnerLists = PartnerRevocationLists()
    private var partnerListFiles: [PartnerName: String] = [:]
    /// Whether the last read of the partner generation failed: said once per outage.
    private var registryUnreachable = false
    /// The partners whose CRL was stale or unusable when last looked at: warned about once.
    private var warnedLists: Set<String> = []

    init(pki: PKIDirectory, store: any InboxStore, threadPool: NIOThreadPool, sendCANames: Bool = false, logger: Logger) {
        self.sendCANames = sendCANames
        self.pki = pki
        self.store = store
        self.generations = FreshReads { try await threadPool.runIfActive { try store.partnerGeneration() } }
        self.logger = logger
    }

    func current() async throws -> Current {
        let generation: Int64
        do {
            generation = try await generations.value()
            if registryUnreachable {
                registryUnreachable = false
                logger.notice("the partners can be read again")
            }
        } catch {
            // The registry is down: handshakes go on with what was last read, and what
            // needs the registry (an upload's commit) is refused on its own.
            guard let cached else { throw error }
            if !registryUnreachable {
                registryUnreachable = true
                logger.warning("the partners cannot be read; the TLS context last built stays in use", metadata: ["error": "\(error)"])
            }
            return cached.current
        }
        let partnerAnchors: [(partner: PartnerName, pem: String)]
        let revocations: [Revocation]
        let listPaths: [(partner: PartnerName, path: String)]
        let pinned: Set<CertificateFingerprint>
        if let read = partnerAnchorsRead, read.generation == generation {
            (partnerAnchors, revocations, listPaths, pinned) = (read.anchors, read.revocations, read.lists, read.pinned)
        } else {
            (partnerAnchors, revocations, listPaths, pinned) = (
                try store.partnerTrustAnchors(), try store.revocations(), try store.partnerRevocationLists(),
                try store.pinnedFingerprints()
            )
            partnerAnchorsRead = (generation, partnerAnchors, revocations, listPaths, pinned)
        }
        refreshPartnerLists(listPaths, anchors: partnerAnchors)
        let key = try cacheKey(partnerAnchors)
        if let cached, cached.key == key, cached.current.revoked.revocations == revocations,
           cached.current.revoked.partnerLists.version == partnerLists.version, cached.current.anchors.pinned == pinned {
            return cached.current
        }
        if let cached, cached.key == key {
            // Only the revocations or the fingerprints changed: the same context (so its
            // sessions still resume, and each request is decided on its own), new lists.
            var current = cached.current
            if current.anchors.pinned != pinned {
                current.check = ClientCertificateCheck(anchors: current.anchors.pinning(pinned))
            }
            current.revoked = RevokedCertificates(
                revocations: revocations, wharfCA: current.anchors.wharf.fingerprint, partnerLists: partnerLists
            )
            self.cached = (key, current)
            return current
        }
        do {
            var current = try build(partnerAnchors, pinned: pinned)
            current.revoked = RevokedCertificates(
                revocations: revocations, wharfCA: current.anchors.wharf.fingerprint, partnerLists: partnerLists
            )
            cached = (key, current)
            logger.info("TLS context loaded", metadata: ["partner_cas": "\(partnerAnchors.count)"])
            return current
        } catch {
            guard let cached else { throw error }
            logger.error("TLS context not reloaded; the previous one stays in use", metadata: ["error": "\(error)"])
            return cached.current
        }
    }

    /// Reads each partner's CRL again if its file changed (or the partner's CAs did), and
    /// warns once about a list that is stale or cannot be used: its partner is refused.
    private func refreshPartnerLists(_ paths: [(partner: PartnerName, path: String)], anchors: [(partner: PartnerName, pem: String)]) {
        var changed = Set(partnerLists.lists.keys).subtracting(paths.map(\.partner))
        for partner in changed {
            partnerLists.lists[partner] = nil
            partnerListFiles[partner] = nil
        }
        for (partner, path) in paths {
            let pem = anchors.first { $0.partner == partner }?.pem ?? ""
            let file = "\(path) \(Self.fileIdentity(path)) \(Hex.encode(SHA256.hash(data: Array(pem.utf8))))"
            guard partnerListFiles[partner] != file else { continue }
            partnerListFiles[partner] = file
            changed.insert(partner)
            let state: PartnerRevocationLists.State
            do {
                let list = try PartnerRevocationList(contentsOf: path)
                let authorities = (try? Certificate.parseAll(pem: pem, source: "the trust CA of \(partner)")) ?? []
                state = list.signer(among: authorities) == nil
                    ? .unusable("it is not signed by the partner's --trust-ca")
                    : .read(list)
            } catch {
                state = .unusable(error.problem)
            }
            partnerLists.lists[partner] = PartnerRevocationLists.Loaded(path: path, state: state)
            if case .read(let list) = state {
                logger.info("partner CRL read", metadata: [
                    "partner": "\(partner)", "path": "\(EscapedText.terminal(path))", "revoked": "\(list.serials.count)",
                    "next_update": "\(list.nextUpdate?.utcTimestamp() ?? "none")",
                ])
            }
        }
        if !changed.isEmpty { partnerLists.version += 1 }
        let now = Date()
        for (partner, loaded) in partnerLists.lists {
            guard let refusal = loaded.refusal(serial: "", partner: partner, now: now) else {
                warnedLists.remove(partnerListFiles[partner] ?? "")
                continue
            }
            let file = partnerListFiles[partner] ?? ""
            guard !warnedLists.contains(file) else { continue }
            warnedLists.insert(file)
            logger.warning("partner's certificates are refused", metadata: ["partner": "\(partner)", "reason": "\(refusal.detail)"])
        }
    }

    private static func fileIdentity(_ path: String) -> String {
        var status = stat()
        guard stat(path, &status) == 0 else { return "missing" }
        return "\(status.st_ino) \(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec) \(status.st_size)"
    }

    private func cacheKey(_ partnerAnchors: [(partner: PartnerName, pem: String)]) throws -> String {
        var hasher = SHA256()
        for path in [pki.serverCertificatePath, pki.serverKeyPath, pki.caCertificatePath] {
            // Files are replaced by rename, so a new inode number marks a new file even
            // within the same second and at the same size.
            var status = stat()
            if stat(path, &status) == 0 {
                hasher.update(data: Array("\(path) \(status.st_ino) \(status.st_mtim.tv_sec).\(status.st_mtim.tv_nsec) \(status.st_size)\n".utf8))
            } else {
                hasher.update(data: Array("\(path) missing\n".utf8))
            }
        }
        for (partner, pem) in partnerAnchors {
            hasher.update(data: Array("\(partner)\n\(pem)\n".utf8))
        }
        return Hex.encode(hasher.finalize())
    }

    static let intermediateTLS12Suites: [NIOTLSCipher] = [
        .TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, .TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
        .TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, .TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
        .TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, .TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
    ]

    private func build(_ partnerAnchors: [(partner: PartnerName, pem: String)], pinned: Set<CertificateFingerprint>) throws -> Current {
        let authority = try pki.loadAuthority().certificate
        let server = try pki.loadServer()
        var partnerCAs: [(partner: PartnerName, certificates: [Certificate])] = []
        for (partner, pem) in partnerAnchors {
            partnerCAs.append((partner, try Certificate.parseAll(pem: pem, source: "the trust CA of \(partner)")))
        }
        let anchors = TrustAnchors(wharf: authority, partnerCAs: partnerCAs, pinned: pinned)

        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: [.certificate(try NIOSSLCertificate(bytes: server.certificate.derBytes, format: .der))],
            privateKey: .privateKey(try NIOSSLPrivateKey(bytes: Array(server.privateKeyPEM.utf8), format: .pem))
        )
        // Mozilla's "intermediate" profile: TLS 1.2 with ECDHE and AEAD suites only, and
        // TLS 1.3 (whose suites BoringSSL fixes); its curves.
        configuration.minimumTLSVersion = .tlsv12
        configuration.maximumTLSVersion = .tlsv13
        configuration.cipherSuiteValues = Self.intermediateTLS12Suites
        configuration.curves = [.x25519, .secp256r1, .secp384r1]
        // A client certificate is required; `ClientCertificateCheck` decides which (the
        // trust roots only name the anchors in the CertificateRequest, with --send-ca-names).
        configuration.certificateVerification = .noHostnameVerification
        configuration.trustRoots = .certificates(try anchors.all.map { try NIOSSLCertificate(bytes: $0.derBytes, format: .der) })
        configuration.sendCANameList = sendCANames
        return Current(
            context: try NIOSSLContext(configuration: configuration), check: ClientCertificateCheck(anchors: anchors),
            signer: try ReceiptSigner(server)
        )
    }
}
