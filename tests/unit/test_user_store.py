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
