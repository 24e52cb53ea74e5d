import CCurl
import Foundation
import WharfCore

/// Carries out one hook event: runs the hook's command or posts to its URL. Blocks.
///
/// A command is started without a shell, its words exactly as the operator gave them; the
/// event reaches it as JSON on stdin and in `WHARF_EVENT_*` variables, so nothing a partner
/// controls (a file name) is ever parsed as part of a command line.
enum HookDispatch {
    /// `nil` when the hook did its part; else what went wrong, in words.
    static func run(_ event: HookEvent, hook: Hook, path: String?) -> String? {
        switch hook.action {
        case .exec(let words): execute(words, event: event, path: path, timeout: hook.timeout)
        case .url(let url, let caFile): post(event.json(path: path), eventID: event.id, to: url, caFile: caFile, timeout: hook.timeout)
        }
    }

    /// The variables a command inherits from Wharf: enough to find programs and write text.
    private static let inherited = ["PATH", "HOME", "LANG", "LC_ALL", "TZ", "TMPDIR"]

    /// The most of a command's standard error kept as its failure.
    static let errorLimit = 400

    /// Writing an event to a command that closed its input must make EPIPE, not end Wharf.
    private static let sigpipeIgnored: Void = { signal(SIGPIPE, SIG_IGN) }()

    private static func execute(_ words: [String], event: HookEvent, path: String?, timeout: Double) -> String? {
        _ = sigpipeIgnored
        let process = Process()
        process.executableURL = URL(fileURLWithPath: words[0])
        process.arguments = Array(words.dropFirst())
        var environment = ProcessInfo.processInfo.environment.filter { inherited.contains($0.key) }
        environment.merge(event.environment(path: path)) { _, new in new }
        process.environment = environment
        process.currentDirectoryURL = URL(fileURLWithPath: "/")
        let input = Pipe()
        let errors = Pipe()
        process.standardInput = input
        process.standardOutput = FileHandle.nullDevice
        process.standardError = errors
        let finished = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in finished.signal() }
        do {
            try process.run()
        } catch {
            return "\(words[0]) could not be started: \(error.localizedDescription)"
        }
        // Read standard error as it comes, so a talkative command never blocks on it.
        let collected = ErrorTail()
        let drained = DispatchSemaphore(value: 0)
        let reader = Thread {
            while case let data = errors.fileHandleForReading.availableData, !data.isEmpty { collected.append(data) }
            drained.signal()
        }
        reader.start()
        // The event is far smaller than a pipe's buffer, so this never waits on a command
        // that does not read it; one that closed its input makes EPIPE, which is ignored.
        try? input.fileHandleForWriting.write(contentsOf: Data(event.json(path: path).utf8))
        try? input.fileHandleForWriting.close()

        if finished.wait(timeout: .now() + timeout) == .timedOut {
            process.terminate()
            if finished.wait(timeout: .now() + 5) == .timedOut { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
            return "\(words[0]) did not finish within \(RetryPolicy.describe(timeout)); it was stopped"
        }
        process.waitUntilExit()
        // What it wrote last; a process it left running may hold standard error open.
        _ = drained.wait(timeout: .now() + 1)
        guard process.terminationStatus != 0 || process.terminationReason != .exit else { return nil }
        let said = collected.text.trimmingCharacters(in: .whitespacesAndNewlines)
        let how = process.terminationReason == .exit ? "exited with status \(process.terminationStatus)" : "was killed by signal \(process.terminationStatus)"
        return "\(words[0]) \(how)" + (said.isEmpty ? "" : ": \(EscapedText.terminal(said))")
    }

    private static func post(_ json: String, eventID: Int64, to url: String, caFile: String?, timeout: Double) -> String? {
        do {
            try CurlEasy.initializeLibrary()
            let curl = try CurlEasy()
            let exchange = CurlDelivery.Exchange(descriptor: -1)
            let context = Unmanaged.passRetained(exchange)
            defer { context.release() }
            var headers: UnsafeMutablePointer<curl_slist>?
            for header in ["Content-Type: application/json", "Wharf-Event-Id: \(eventID)", "User-Agent: wharf/\(WharfVersion.current)", "Expect:"] {
                headers = wharf_curl_slist_append(headers, header)
            }
            defer { wharf_curl_slist_free_all(headers) }
            var errorBuffer = [CChar](repeating: 0, count: Int(CURL_ERROR_SIZE) + 1)
            let code: CURLcode = try errorBuffer.withUnsafeMutableBytes { errorBytes throws(WharfError) in
                try curl.set(CURLOPT_URL, url)
                try curl.set(CURLOPT_NOSIGNAL, 1)
                try curl.set(CURLOPT_PROTOCOLS_STR, "http,https")
                try curl.set(CURLOPT_FOLLOWLOCATION, 0)
                try curl.set(CURLOPT_SSLVERSION, Int(CURL_SSLVERSION_TLSv1_2))
                if let caFile { try curl.set(CURLOPT_CAINFO, caFile) }
                try curl.set(CURLOPT_CONNECTTIMEOUT_MS, Int(min(timeout, 10) * 1000))
                try curl.set(CURLOPT_TIMEOUT_MS, Int(timeout * 1000))
                try curl.set(CURLOPT_COPYPOSTFIELDS, json)
                try curl.set(CURLOPT_HTTPHEADER, list: headers)
                try curl.set(CURLOPT_WRITEFUNCTION, callback: collectBody)
                try curl.set(CURLOPT_WRITEDATA, pointer: context.toOpaque())
                try curl.set(CURLOPT_ERRORBUFFER, pointer: errorBytes.baseAddress)
                return curl.perform()
            }
            guard code == CURLE_OK else {
                let error = String(decoding: errorBuffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                return "POST \(url): curl \(code.rawValue): \(error.isEmpty ? String(cString: wharf_curl_easy_strerror(code)) : error)"
            }
            let status = curl.info(long: CURLINFO_RESPONSE_CODE)
            guard (200..<300).contains(status) else {
                let body = String(decoding: exchange.body.prefix(errorLimit), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                return "POST \(url) answered HTTP \(status)" + (body.isEmpty ? "" : ": \(EscapedText.terminal(body))")
            }
            return nil
        } catch {
            return "POST \(url): \((error as? WharfError)?.problem ?? "\(error)")"
        }
    }
}

/// The last `HookDispatch.errorLimit` bytes a command wrote to standard error.
private final class ErrorTail: @unchecked Sendable {
    private let lock = NSLock()
    private var data = Data()

    func append(_ more: Data) {
        lock.withLock {
            data.append(more)
            if data.count > HookDispatch.errorLimit { data = data.suffix(HookDispatch.errorLimit) }
        }
    }

    var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}
