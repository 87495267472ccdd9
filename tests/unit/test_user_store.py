from clickstream_common.contracts import User
from clickstream_user_state.store import Found, UserStore

ALICE_GOLD = User("1", "Alice", "GOLD")
ALICE_PLAT = User("1", "Alice", "PLATINUM")


def test_unknown_user_is_unknown_in_both_modes():
    store = UserStore()
    assert store.latest("nobody").found is Found.UNKNOWN
    assert store.as_of("nobody", 100).found is Found.UNKNOWN


def test_as_of_returns_the_version_valid_at_event_time():
    store = UserStore()
    store.apply("1", ALICE_GOLD, 100)
    store.apply("1", ALICE_PLAT, 200)
    assert store.as_of("1", 150).user == ALICE_GOLD
    assert store.as_of("1", 200).user == ALICE_PLAT
    assert store.as_of("1", 10_000).user == ALICE_PLAT
    assert store.latest("1").user == ALICE_PLAT


def test_click_before_first_version_is_absent_not_unknown():
    store = UserStore()
    store.apply("1", ALICE_GOLD, 100)
    assert store.as_of("1", 99).found is Found.ABSENT


def test_out_of_order_versions_are_sorted_in():
    store = UserStore()
    store.apply("1", ALICE_PLAT, 200)
    store.apply("1", ALICE_GOLD, 100)
    assert store.as_of("1", 150).user == ALICE_GOLD
    assert store.latest("1").user == ALICE_PLAT


def test_tombstone_deletes_from_its_time_on():
    store = UserStore()
    store.apply("1", ALICE_PLAT, 100)
    store.apply("1", None, 200)
    assert store.as_of("1", 150).user == ALICE_PLAT
    assert store.as_of("1", 250).found is Found.ABSENT
    assert store.latest("1").found is Found.ABSENT
    assert store.by_level("PLATINUM") == []
    assert len(store) == 0


def test_tombstone_for_a_user_never_seen_changes_nothing():
    store = UserStore()
    store.apply("ghost", None, 100)
    assert store.latest("ghost").found is Found.UNKNOWN


def test_history_is_bounded_and_older_clicks_use_the_oldest_retained_version():
    store = UserStore(max_versions=2)
    store.apply("1", User("1", "A", "BRONZE"), 100)
    store.apply("1", ALICE_GOLD, 200)
    store.apply("1", ALICE_PLAT, 300)
    result = store.as_of("1", 150)
    assert result.user == ALICE_GOLD
    assert result.beyond_history
    assert not store.as_of("1", 250).beyond_history


def test_by_level_follows_level_changes():
    store = UserStore()
    store.apply("1", ALICE_GOLD, 100)
    store.apply("2", User("2", "Bob", "PLATINUM"), 100)
    assert [u.user_id for u in store.by_level("platinum")] == ["2"]
    store.apply("1", ALICE_PLAT, 200)
    assert [u.user_id for u in store.by_level("PLATINUM")] == ["1", "2"]
    assert store.levels() == {"GOLD": 0, "PLATINUM": 2}
    assert len(store) == 2


def test_level_counts_follow_changes_and_deletes():
    store = UserStore()
    store.put("1", 100, "Alice", "GOLD")
    store.put("2", 100, "Bob", "GOLD")
    store.put("1", 200, "Alice", "PLATINUM")
    store.delete("2", 300)
    assert store.levels() == {"GOLD": 0, "PLATINUM": 1}
    assert len(store) == 1
    store.put("2", 400, "Bob", "SILVER")  # back after being deleted
    assert store.levels() == {"GOLD": 0, "PLATINUM": 1, "SILVER": 1}
    assert [u.user_id for u in store.by_level("silver")] == ["2"]
    assert len(store) == 2


def test_an_out_of_order_older_version_does_not_change_the_current_level():
    store = UserStore()
    store.put("1", 200, "Alice", "PLATINUM")
    store.put("1", 100, "Alice", "GOLD")
    assert store.levels() == {"PLATINUM": 1}
    assert store.by_level("GOLD") == []
    assert store.by_level("PLATINUM") == [ALICE_PLAT]


def test_an_out_of_order_tombstone_in_the_past_keeps_the_user():
    store = UserStore()
    store.put("1", 200, "Alice", "GOLD")
    store.delete("1", 100)
    assert store.latest("1").user == ALICE_GOLD
    assert store.as_of("1", 150).found is Found.ABSENT
    assert len(store) == 1


def test_by_level_lists_current_users_sorted_by_id():
    store = UserStore()
    for user_id in ["b", "c", "a", "d"]:
        store.put(user_id, 1, user_id.upper(), "GOLD" if user_id != "c" else "SILVER")
    assert [u.user_id for u in store.by_level("Gold")] == ["a", "b", "d"]
    assert store.by_level("GOLD")[0] == User("a", "A", "GOLD")
    assert store.by_level("BRONZE") == []


def test_a_single_retained_version_still_answers_older_clicks_beyond_history():
    store = UserStore(max_versions=1)
    store.put("1", 100, "Alice", "GOLD")
    assert store.as_of("1", 50).found is Found.ABSENT  # nothing was dropped yet
    store.put("1", 200, "Alice", "PLATINUM")
    older = store.as_of("1", 150)
    assert (older.found, older.user, older.beyond_history) == (Found.FOUND, ALICE_PLAT, True)
    store.delete("1", 300)
    gone = store.as_of("1", 10)
    assert (gone.found, gone.user, gone.beyond_history) == (Found.ABSENT, None, True)


def test_lookup_uses_the_latest_version_without_a_time():
    store = UserStore()
    store.put("1", 100, "Alice", "GOLD")
    store.put("1", 200, "Alice", "PLATINUM")
    assert store.lookup("1", None).user == ALICE_PLAT
    assert store.lookup("1", 150).user == ALICE_GOLD
    assert store.lookup("2", None).found is Found.UNKNOWN
