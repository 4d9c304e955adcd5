# ruby-redis against ordo: pub/sub, then resume from the log with XREAD.
require "redis"

port = ARGV[0].to_i
pub = Redis.new(host: "127.0.0.1", port: port)
sub = Redis.new(host: "127.0.0.1", port: port)
got = []
t = Thread.new do
  sub.subscribe_with_timeout(10, "rb") do |on|
    on.subscribe { |_, _| 3.times { |i| pub.publish("rb", "m#{i}") } }
    on.message do |_, msg|
      got << msg
      sub.unsubscribe if got.size == 3
    end
  end
end
t.join
raise "pubsub got #{got.inspect}" unless got == %w[m0 m1 m2]
entries = pub.xread("rb", "0")["rb"]
raise "xread #{entries.inspect}" unless entries.map { |e| e[1]["payload"] } == got
resume = pub.xread("rb", entries[1][0])["rb"]
raise "resume #{resume.inspect}" unless resume.map { |e| e[1]["payload"] } == ["m2"]
puts "OK"
