import Foundation
import NIOPosix
import Logging
import ServiceLifecycle
import WharfCore
import WharfStore

/// Warns in the log about every certificate within 30 days of expiry (Wharf's CA, server
/// and client certificates, partner identities): when the gateway starts, then once a day.
struct ExpiryWatch: Service {
    let home: WharfHome
    let store: any HomeStore
    let logger: Logger
    var interval: Duration = .seconds(86_400)

    func run() async throws {
        let watch = self
        await repeatUntilShutdown(every: interval) { watch.warn(at: Date()) }
    }

    /// Logs one warning per certificate expiring within `CertificateExpiry.warningDays`.
    func warn(at now: Date) {
        do {
            let certificates = try home.certificateExpiries(partners: store.partners())
            for certificate in CertificateExpiry.expiringSoon(certificates, at: now) {
                let days = certificate.daysLeft(at: now)
                logger.warning(days < 0 ? "a certificate has expired" : "a certificate expires soon", metadata: [
                    "kind": "\(certificate.kind.rawValue)", "partner": "\(certificate.partner ?? "")",
                    "fingerprint": "\(certificate.fingerprint ?? "")", "not_after": "\(certificate.notAfter.utcTimestamp())",
                    "days_left": "\(days)",
                ])
            }
        } catch {
            logger.error("certificate expiry could not be checked", metadata: ["error": "\(error)"])
        }
    }
}

/// Runs `body` now, then every `interval`; the wait ends, without an error, when the
/// gateway shuts down.
func repeatUntilShutdown(every interval: Duration, _ body: @escaping @Sendable () -> Void) async {
    await cancelWhenGracefulShutdown {
        while !Task.isCancelled {
            // The bodies read the registry and pki/, which blocks: on the thread pool.
            _ = try? await NIOThreadPool.singleton.runIfActive { body() }
            try? await Task.sleep(for: interval)
        }
    }
}
