# Renders the Open OnDemand app (containers/ood/kelpie) the way OnDemand does, with Ruby's
# own ERB (trim mode "-") and a fixture context holding the form's attributes, then checks
# what comes out: the YAML OnDemand reads, and the shell scripts it runs on the node.
#
#   ruby containers/tests/check_ood.rb [APP_DIR]
#
# Prints one line per check and exits 1 if any failed. The scripts are run for real with
# bash, with `apptainer` replaced by a recorder of its arguments and environment (the one
# program a login node has that this machine lacks).

require 'erb'
require 'yaml'
require 'shellwords'
require 'open3'
require 'tmpdir'
require 'fileutils'

APP = File.expand_path(ARGV[0] || File.join(__dir__, '..', 'ood', 'kelpie'))
$failed = 0

def check(name)
  ok, detail = yield
  puts "#{ok ? 'ok  ' : 'FAIL'} #{name}#{ok || detail.nil? ? '' : ": #{detail}"}"
  $failed += 1 unless ok
rescue StandardError => e
  puts "FAIL #{name}: #{e.class}: #{e.message}"
  $failed += 1
end

# OnDemand's session context: form attributes are methods (strings, as the form posts
# them) in submit.yml.erb, and `context.NAME` in the template's files.
class Context
  def initialize(attrs)
    attrs.each { |k, v| define_singleton_method(k) { v } }
  end

  def context
    self
  end

  def render(path)
    ERB.new(File.read(path), trim_mode: '-').result(binding)
  end
end

# view.html.erb sees connection.yml's keys as locals.
def render_view(path, locals)
  b = binding
  locals.each { |k, v| b.local_variable_set(k, v) }
  ERB.new(File.read(path), trim_mode: '-').result(b)
end

form = YAML.safe_load(File.read(File.join(APP, 'form.yml')))
manifest = YAML.safe_load(File.read(File.join(APP, 'manifest.yml')))
defaults = form['attributes'].transform_values { |a| a.is_a?(Hash) ? a['value'] : a }
                             .merge('bc_num_hours' => '4', 'bc_email_on_started' => '0')
                             .transform_values(&:to_s)
defaults['kelpie_size'] = form['attributes']['kelpie_size']['options'][0][1]

check('manifest is a batch_connect app') { [manifest['role'] == 'batch_connect', manifest['role']] }
check('every form item is defined or an OnDemand built-in') do
  missing = form['form'].reject { |f| f.start_with?('bc_') || form['attributes'].key?(f) }
  [missing.empty?, missing.inspect]
end
check('every attribute the templates use is on the form') do
  used = Dir[File.join(APP, '**', '*.erb')].flat_map { |f| File.read(f).scan(/(?:context\.)?\b(kelpie_\w+|num_cores|bc_\w+)\b/) }
  missing = used.flatten.uniq - form['form']
  [missing.empty?, missing.inspect]
end

submit = {}
%w[0 1].each do |gpu|
  ctx = Context.new(defaults.merge('kelpie_gpu' => gpu))
  submit[gpu] = YAML.safe_load(ctx.render(File.join(APP, 'submit.yml.erb')))
end
check('submit.yml.erb: basic template with the token as a connection parameter') do
  bc = submit['0']['batch_connect']
  [bc['template'] == 'basic' && bc['conn_params'] == ['token'], bc.inspect]
end
check('submit.yml.erb: a GPU is requested only when ticked') do
  native = ->(g) { submit[g].dig('script', 'native') || [] }
  [native.call('1').include?('--gres=gpu:1') && !native.call('0').any? { |a| a.include?('gres') },
   { '0' => native.call('0'), '1' => native.call('1') }.inspect]
end
check('submit.yml.erb: the core count is clamped') do
  n = YAML.safe_load(Context.new(defaults.merge('num_cores' => '100000')).render(File.join(APP, 'submit.yml.erb')))
  [n.dig('script', 'native').include?('--cpus-per-task=64'), n.dig('script', 'native').inspect]
end

Dir.mktmpdir('kelpie-ood') do |dir|
  # The recorder: prints its arguments and the APPTAINERENV_* it was given; `kelpie token`
  # answers with a fixed string so before.sh has a token to export.
  bin = File.join(dir, 'bin')
  FileUtils.mkdir_p(bin)
  File.write(File.join(bin, 'apptainer'), <<~SH)
    #!/bin/bash
    if [ "$1" = exec ] && [ "$3" = kelpie ] && [ "$4" = token ]; then echo "TOKEN-FOR-$8"; exit 0; fi
    printf 'ARGS %s\\n' "$*"
    env | grep '^APPTAINERENV_' | sort
  SH
  File.chmod(0o755, File.join(bin, 'apptainer'))
  sif = File.join(dir, 'kelpie.sif')
  File.write(sif, '')

  run = lambda do |gpu, extra = {}|
    ctx = Context.new(defaults.merge('kelpie_gpu' => gpu, 'kelpie_sif' => sif).merge(extra))
    before = ctx.render(File.join(APP, 'template', 'before.sh.erb'))
    script = ctx.render(File.join(APP, 'template', 'script.sh.erb'))
    File.write(File.join(dir, 'before.sh'), before)
    File.write(File.join(dir, 'script.sh'), script)
    # What OnDemand's basic template does around them: host, find_port, before, script.
    driver = <<~SH
      set -e
      host=node17
      find_port() { echo 5901; }
      cd #{dir.shellescape}
      source ./before.sh
      export host port   # as OnDemand's basic script wrapper does
      echo "TOKEN $token"
      bash ./script.sh
    SH
    out, err, st = Open3.capture3({ 'PATH' => "#{bin}:#{ENV['PATH']}", 'USER' => 'alice' }, 'bash', '-c', driver)
    [out, err, st, before, script]
  end

  out0, err0, st0, before, script = run.call('0')
  check('before.sh and script.sh run: token minted for the user, apptainer started') do
    [st0.success? && out0.include?('TOKEN TOKEN-FOR-alice') && out0.include?("ARGS run #{sif}"), "#{out0}#{err0}"]
  end
  check('script.sh: token auth, listening for the node proxy under /node/HOST/PORT/') do
    want = ['APPTAINERENV_KELPIE_AUTH=token', 'APPTAINERENV_KELPIE_LISTEN=0.0.0.0:5901',
            'APPTAINERENV_KELPIE_BASE_PATH=/node/node17/5901/', 'APPTAINERENV_KELPIE_SIZE=1920x1080']
    [want.all? { |w| out0.include?(w) }, out0]
  end
  check('script.sh: no GPU, no --nv; no portal origin, none set') do
    [!out0.include?('--nv') && !out0.include?('ALLOWED_ORIGINS'), out0]
  end
  check('the token secret file is private to the user') do
    mode = File.stat(File.join(dir, 'token-secret')).mode & 0o777
    [mode == 0o600, format('%o', mode)]
  end
  out1, err1, st1, = run.call('1', 'kelpie_portal_origin' => 'https://ondemand.example.org')
  check('script.sh: a GPU adds --nv; the portal origin is allowed') do
    [st1.success? && out1.include?("ARGS run --nv #{sif}") &&
      out1.include?('APPTAINERENV_KELPIE_ALLOWED_ORIGINS=https://ondemand.example.org'), "#{out1}#{err1}"]
  end
  evil = '1920x1080; touch PWNED $(touch PWNED2)'
  out2, err2, st2, = run.call('0', 'kelpie_size' => evil)
  check('form values reach the scripts as data, never as shell') do
    [st2.success? && out2.include?("APPTAINERENV_KELPIE_SIZE=#{evil}") &&
      !File.exist?(File.join(dir, 'PWNED')) && !File.exist?(File.join(dir, 'PWNED2')), "#{out2}#{err2}"]
  end
  if system('command -v shellcheck >/dev/null 2>&1')
    check('shellcheck of the rendered scripts') do
      # host, port and find_port come from OnDemand's basic template (SC2154).
      o, s = Open3.capture2e('shellcheck', '-s', 'bash', '-e', 'SC2154',
                             File.join(dir, 'before.sh'), File.join(dir, 'script.sh'))
      [s.success?, o]
    end
  end
  check('before.sh refuses a missing image with a clear message') do
    _, err, st, = run.call('0', 'kelpie_sif' => File.join(dir, 'absent.sif'))
    [!st.success? && err.include?('is not readable'), err]
  end
end

view = render_view(File.join(APP, 'view.html.erb'), host: 'node17', port: 5901, password: 'x', token: 'TOK123')
check('view.html.erb: opens /node/HOST/PORT/ with the token') do
  [view.include?('action="/node/node17/5901/"') && view.include?('value="TOK123"'), view]
end

puts "ood: #{$failed.zero? ? 'all passed' : "#{$failed} failed"}"
exit($failed.zero? ? 0 : 1)
