import CCurl
import Foundation
import NIOConcurrencyHelpers
import WharfCore

/// libcurl's multi interface on a thread of its own: every delivery of the process runs
/// on that one thread, and all share one connection cache, so deliveries to a partner
/// reuse its connections. See https://curl.se/libcurl/c/libcurl-multi.html.
///
/// A caller hands an easy handle over with `perform` and gets it back, finished, when the
/// call returns; in between only this thread touches the handle (and runs its callbacks).
final class CurlMulti: @unchecked Sendable {
    private struct Job {
        let easy: CurlEasy
        let continuation: CheckedContinuation<CURLcode, Never>
    }

    private let multi: UnsafeMutableRawPointer
    /// Handed over by callers, taken by the thread.
    private let incoming = NIOLockedValueBox<(jobs: [Job], stopping: Bool)>(([], false))
    /// Touched by the thread only.
    private var running: [UnsafeMutableRawPointer: Job] = [:]

    init() throws(WharfError) {
        try CurlEasy.initializeLibrary()
        guard let multi = wharf_curl_multi_init() else { throw WharfError(.systemResources, "libcurl could not create a multi handle") }
        self.multi = multi
        _ = wharf_curl_multi_setopt_long(multi, CURLMOPT_MAXCONNECTS, 64)
        let thread = Thread { [self] in loop() }
        thread.name = "wharf-curl"
        thread.start()
    }

    /// Runs `easy`'s transfer to its end and returns libcurl's result.
    func perform(_ easy: CurlEasy) async -> CURLcode {
        await withCheckedContinuation { continuation in
            incoming.withLockedValue { $0.jobs.append(Job(easy: easy, continuation: continuation)) }
            wharf_curl_multi_wakeup(multi)
        }
    }

    /// Lets transfers in flight finish, then ends the thread and frees the multi handle.
    func shutdown() {
        incoming.withLockedValue { $0.stopping = true }
        wharf_curl_multi_wakeup(multi)
    }

    private func loop() {
        var stillRunning: Int32 = 0
        while true {
            let (jobs, stopping) = incoming.withLockedValue { state in
                defer { state.jobs.removeAll() }
                return (state.jobs, state.stopping)
            }
            for job in jobs {
                if wharf_curl_multi_add_handle(multi, job.easy.handle) == CURLM_OK {
                    running[job.easy.handle] = job
                } else {
                    job.continuation.resume(returning: CURLE_FAILED_INIT)
                }
            }
            if stopping && running.isEmpty { break }
            wharf_curl_multi_perform(multi, &stillRunning)
            var left: Int32 = 0
            while let message = wharf_curl_multi_info_read(multi, &left) {
                guard message.pointee.msg == CURLMSG_DONE, let handle = message.pointee.easy_handle,
                      let job = running.removeValue(forKey: handle) else { continue }
                let result = wharf_curl_msg_result(message)
                wharf_curl_multi_remove_handle(multi, handle)
                job.continuation.resume(returning: result)
            }
            // Sleeps until a socket is ready, a timeout of libcurl's is due, or `perform` wakes it.
            wharf_curl_multi_poll(multi, nil, 0, 1000, nil)
        }
        wharf_curl_multi_cleanup(multi)
    }
}
