import Foundation
import Logging
import ServiceLifecycle
import WharfCore
import WharfPKI
import WharfStore

/// Wharf's CRL: the revoked certificates its CA issued, signed by the CA, kept in
/// `pki/crl.pem` (written again on every revocation and daily by `serve`, long before the
/// list's next update) and served by the admin listener at `/crl`.
struct RevocationListPublisher: Sendable {
    let pki: PKIDirectory
    let store: any HomeStore

    /// The list as the registry says now.
    func make(now: Date = Date()) throws(WharfError) -> RevocationList {
        let entries = try store.revokedSerials().map { RevocationList.Entry(serial: $0.serial, revokedAt: $0.revokedAt) }
        return try RevocationList(entries: entries, authority: try pki.loadAuthority(), now: now)
    }

    /// Makes the list and writes it to `pki/crl.pem`.
    @discardableResult
    func publish(now: Date = Date()) throws(WharfError) -> RevocationList {
        let list = try make(now: now)
        try AtomicFile.write(list.pemText, to: pki.revocationListPath, mode: 0o644)
        return list
    }

    /// After a revocation is committed: `pki/crl.pem` written again, or a warning that it
    /// was not (the revocation stands; `wharf ca crl` writes it).
    static func publishAfterRevoking(home: WharfHome, registry: any HomeStore) {
        do {
            let list = try RevocationListPublisher(pki: home.pki, store: registry).publish()
            Console.print("The CRL (\(home.pki.revocationListPath)) now lists \(list.entries.count) \(list.entries.count == 1 ? "certificate" : "certificates") of Wharf's CA.")
        } catch {
            Console.error("wharf: warning: revoked, but the CRL was not written again: \(error); run `wharf ca crl`")
        }
    }
}

/// `serve`'s refresh of `pki/crl.pem`, so that a TLS terminator reading the file never
/// finds it past its next update (a week): checked hourly, written again once it is a day
/// old. A home without the file (no revocation yet, no `wharf ca crl`) is left without.
struct RevocationListRefresh: Service {
    let publisher: RevocationListPublisher
    let logger: Logger
    var interval: Duration = .seconds(3_600)
    var maximumAge: TimeInterval = 86_400

    func run() async throws {
        let refresh = self
        await repeatUntilShutdown(every: interval) { refresh.refreshIfOld(now: Date()) }
    }

    /// Writes the list again if the file is older than `maximumAge`; returns whether it did.
    @discardableResult
    func refreshIfOld(now: Date) -> Bool {
        let path = publisher.pki.revocationListPath
        guard let written = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date,
              now.timeIntervalSince(written) >= maximumAge
        else { return false }
        do {
            try publisher.publish(now: now)
            logger.info("CRL written again", metadata: ["path": "\(path)"])
            return true
        } catch {
            logger.error("the CRL could not be written", metadata: ["path": "\(path)", "error": "\(error)"])
            return false
        }
    }
}
