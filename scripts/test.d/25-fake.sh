say "the fake server's own tests (python unittest)"
python3 fake/test_fake_server.py -v >"$LOGS/fake.log" 2>&1
ok=$(grep -cE '\.\.\. ok$' "$LOGS/fake.log"); bad=$(grep -cE '\.\.\. (FAIL|ERROR)$' "$LOGS/fake.log")
if ! tail -1 "$LOGS/fake.log" | grep -q '^OK'; then tail -40 "$LOGS/fake.log"; [ "$bad" = 0 ] && bad=1; fi
count "$ok" "$bad" "fake server tests"
