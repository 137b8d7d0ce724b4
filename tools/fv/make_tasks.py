#!/usr/bin/env python3
"""Writes the function-vector task files data/fv/<task>.jsonl (one {"input", "output"} object
per line) from the hand-written lists below. Word-list tasks (uppercase, first-letter,
singular-plural) derive their outputs by rule from one shared English noun list plus a
hand-written irregular list. No randomness: re-running writes identical files. The train /
test split is made at run time by `strata fv` (seeded), not stored here.

Run: python3 tools/fv/make_tasks.py   (writes data/fv/*.jsonl)
"""
import json
import os

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
OUT = os.path.join(ROOT, "data", "fv")

ANTONYMS = """hot cold|big small|tall short|fast slow|happy sad|good bad|old new|young old|light dark
|up down|open closed|high low|rich poor|strong weak|hard soft|early late|full empty|wet dry|clean dirty
|heavy light|thick thin|wide narrow|deep shallow|loud quiet|long short|first last|right wrong|true false
|win lose|buy sell|push pull|give take|love hate|friend enemy|day night|black white|north south|east west
|inside outside|above below|before after|alive dead|safe dangerous|cheap expensive|easy difficult
|begin end|arrive leave|accept reject|add subtract|allow forbid|ancient modern|asleep awake|attack defend
|beautiful ugly|brave cowardly|bright dim|calm angry|careful careless|certain uncertain|common rare
|complex simple|correct incorrect|cruel kind|dangerous safe|dull sharp|entrance exit|even odd
|expand contract|fail succeed|famous unknown|fat thin|fake real|fertile barren|foreign native
|forget remember|frequent rare|generous selfish|gentle rough|guilty innocent|happy unhappy|healthy sick
|honest dishonest|horizontal vertical|hungry full|include exclude|increase decrease|inferior superior
|internal external|large small|lazy hardworking|legal illegal|less more|lost found|major minor
|maximum minimum|mature immature|narrow broad|natural artificial|negative positive|noisy quiet
|obvious hidden|optimist pessimist|ordinary special|permanent temporary|polite rude|possible impossible
|present absent|private public|profit loss|question answer|raise lower|rapid slow|remember forget
|sharp blunt|shut open|sour sweet|spend save|stand sit|start finish|success failure|sunny cloudy
|tight loose|top bottom|tough tender|visible invisible|victory defeat|wise foolish|yes no|always never
|male female|winter summer|cheap costly|smooth rough|sweet bitter|dark bright|near far
|over under|front back|left right|import export|minimum maximum|patient impatient|proud humble"""

CAPITALS = """France Paris|Germany Berlin|Italy Rome|Spain Madrid|Portugal Lisbon|Greece Athens|Poland Warsaw
|Austria Vienna|Hungary Budapest|Sweden Stockholm|Norway Oslo|Denmark Copenhagen|Finland Helsinki
|Ireland Dublin|Belgium Brussels|Netherlands Amsterdam|Switzerland Bern|Russia Moscow|Ukraine Kyiv
|Romania Bucharest|Bulgaria Sofia|Serbia Belgrade|Croatia Zagreb|Slovakia Bratislava|Slovenia Ljubljana
|Czechia Prague|Estonia Tallinn|Latvia Riga|Lithuania Vilnius|Belarus Minsk|Moldova Chisinau
|Albania Tirana|Iceland Reykjavik|Luxembourg Luxembourg|Malta Valletta|Cyprus Nicosia|Turkey Ankara
|Georgia Tbilisi|Armenia Yerevan|Azerbaijan Baku|Kazakhstan Astana|Uzbekistan Tashkent|Iran Tehran
|Iraq Baghdad|Syria Damascus|Lebanon Beirut|Jordan Amman|Israel Jerusalem|Egypt Cairo|Libya Tripoli
|Tunisia Tunis|Algeria Algiers|Morocco Rabat|Sudan Khartoum|Ethiopia Addis Ababa|Kenya Nairobi
|Uganda Kampala|Tanzania Dodoma|Rwanda Kigali|Somalia Mogadishu|Nigeria Abuja|Ghana Accra
|Senegal Dakar|Mali Bamako|Niger Niamey|Chad N'Djamena|Cameroon Yaounde|Gabon Libreville|Angola Luanda
|Zambia Lusaka|Zimbabwe Harare|Mozambique Maputo|Botswana Gaborone|Namibia Windhoek|Madagascar Antananarivo
|Malawi Lilongwe|Liberia Monrovia|Guinea Conakry|Togo Lome|Benin Porto-Novo|Eritrea Asmara
|Saudi Arabia Riyadh|Yemen Sanaa|Oman Muscat|Qatar Doha|Kuwait Kuwait City|Bahrain Manama
|Afghanistan Kabul|Pakistan Islamabad|India New Delhi|Nepal Kathmandu|Bangladesh Dhaka|Sri Lanka Colombo
|Bhutan Thimphu|China Beijing|Japan Tokyo|Mongolia Ulaanbaatar|North Korea Pyongyang|South Korea Seoul
|Vietnam Hanoi|Laos Vientiane|Cambodia Phnom Penh|Thailand Bangkok|Myanmar Naypyidaw|Malaysia Kuala Lumpur
|Singapore Singapore|Indonesia Jakarta|Philippines Manila|Taiwan Taipei|Australia Canberra
|New Zealand Wellington|Fiji Suva|Canada Ottawa|United States Washington|Mexico Mexico City
|Cuba Havana|Jamaica Kingston|Haiti Port-au-Prince|Guatemala Guatemala City|Honduras Tegucigalpa
|Nicaragua Managua|Costa Rica San Jose|Panama Panama City|Colombia Bogota|Venezuela Caracas
|Ecuador Quito|Peru Lima|Bolivia La Paz|Chile Santiago|Argentina Buenos Aires|Uruguay Montevideo
|Paraguay Asuncion|Brazil Brasilia|Guyana Georgetown|Suriname Paramaribo|United Kingdom London
|Scotland Edinburgh|Wales Cardiff|Tajikistan Dushanbe|Kyrgyzstan Bishkek|Turkmenistan Ashgabat
|Bahamas Nassau|Barbados Bridgetown|Burundi Gitega|Djibouti Djibouti|Mauritania Nouakchott
|Sierra Leone Freetown|South Africa Pretoria|Lesotho Maseru|Eswatini Mbabane|Maldives Male
|Brunei Bandar Seri Begawan|Papua New Guinea Port Moresby|Samoa Apia|Tonga Nuku'alofa
|Dominican Republic Santo Domingo|El Salvador San Salvador|Belize Belmopan|Trinidad and Tobago Port of Spain
|Montenegro Podgorica|North Macedonia Skopje|Bosnia and Herzegovina Sarajevo|Kosovo Pristina|Monaco Monaco
|Andorra Andorra la Vella|Liechtenstein Vaduz|San Marino San Marino|Vatican City Vatican City"""

FRENCH = """cat chat|dog chien|house maison|water eau|bread pain|book livre|car voiture|tree arbre
|sun soleil|moon lune|star etoile|sea mer|river riviere|mountain montagne|city ville|street rue
|door porte|window fenetre|table table|chair chaise|bed lit|school ecole|teacher professeur|student etudiant
|friend ami|mother mere|father pere|brother frere|sister soeur|child enfant|man homme|woman femme
|king roi|queen reine|horse cheval|bird oiseau|fish poisson|cow vache|pig cochon|sheep mouton
|chicken poulet|apple pomme|cheese fromage|milk lait|wine vin|beer biere|coffee cafe|tea the
|sugar sucre|salt sel|egg oeuf|meat viande|flower fleur|garden jardin|forest foret|field champ
|rain pluie|snow neige|wind vent|fire feu|earth terre|sky ciel|cloud nuage|night nuit|day jour
|week semaine|year annee|hour heure|time temps|money argent|work travail|word mot|language langue
|country pays|world monde|head tete|hand main|foot pied|eye oeil|mouth bouche|heart coeur|nose nez
|ear oreille|hair cheveux|blood sang|church eglise|bridge pont|boat bateau|train train|plane avion
|road route|shop magasin|market marche|office bureau|hospital hopital|doctor medecin|kitchen cuisine
|room chambre|wall mur|floor sol|key cle|letter lettre|song chanson|dance danse|game jeu|ball balle
|shoe chaussure|hat chapeau|shirt chemise|dress robe|glass verre|bottle bouteille|knife couteau
|spoon cuillere|fork fourchette|plate assiette|butter beurre|rice riz|soup soupe|cake gateau
|summer ete|winter hiver|spring printemps|island ile|lake lac|beach plage|village village
|war guerre|peace paix|love amour|life vie|death mort|truth verite|dream reve|voice voix
|morning matin|evening soir|cheese fromage|pen stylo|paper papier|picture image|music musique"""

VERBS_IRREGULAR = """be was|begin began|break broke|bring brought|build built|buy bought|catch caught
|choose chose|come came|cut cut|do did|draw drew|drink drank|drive drove|eat ate|fall fell|feel felt
|fight fought|find found|fly flew|forget forgot|freeze froze|get got|give gave|go went|grow grew
|have had|hear heard|hide hid|hold held|keep kept|know knew|lead led|leave left|lend lent|lose lost
|make made|mean meant|meet met|pay paid|ride rode|ring rang|rise rose|run ran|say said|see saw
|sell sold|send sent|shake shook|shine shone|shoot shot|sing sang|sit sat|sleep slept|speak spoke
|spend spent|stand stood|steal stole|swim swam|take took|teach taught|tear tore|tell told|think thought
|throw threw|understand understood|wake woke|wear wore|win won|write wrote"""
VERBS_REGULAR = """walk talk jump play work call ask help look open close clean cook dance listen watch
want need like love live move smile start stop wait wash cry try carry study hurry plan visit
answer arrive borrow change climb count decide enjoy explain finish follow happen invite kick kill
laugh learn marry miss order paint pick pull push rain reach remember repeat return save share
shout show sign smell stay thank travel turn use wish worry"""

NOUNS = """table chair window door house apple river mountain garden flower book pencil paper letter
bottle basket candle doctor farmer teacher student friend mother father brother sister child baby
animal monkey rabbit tiger lion horse donkey camel eagle parrot spider insect planet island forest
desert ocean valley bridge tower castle church school market office street village kitchen bedroom
garage ladder mirror pillow blanket jacket sweater button pocket wallet ticket camera engine rocket
signal marble cotton silver copper carpet lemon melon onion carrot potato tomato cherry berry lady
city country story party body penny puppy pony berry army baby family hobby boy key toy day monkey
box fox bus dish brush church watch glass kiss class match wish tax bench beach coach""".split()
IRREGULAR_PLURALS = {"man": "men", "woman": "women", "child": "children", "foot": "feet", "tooth": "teeth",
                     "mouse": "mice", "goose": "geese", "person": "people", "ox": "oxen", "leaf": "leaves",
                     "knife": "knives", "wife": "wives", "wolf": "wolves", "half": "halves",
                     "shelf": "shelves", "loaf": "loaves", "thief": "thieves", "calf": "calves"}
WORDS_UPPER = """table chair window door house apple river mountain garden flower book pencil paper
letter bottle basket candle doctor farmer teacher student friend mother father animal rabbit tiger
lion horse eagle planet island forest desert ocean valley bridge tower castle school market office
street village kitchen mirror pillow jacket button pocket ticket camera engine rocket silver copper
lemon melon onion carrot potato tomato cherry music dream water fire earth cloud storm winter summer
spring autumn morning evening night happy quiet bright green yellow purple orange black white brown
simple strong little small large heavy light dark sweet bitter quick slow clever gentle proud
honest secret silent golden wooden modern ancient""".split()

NUMBER_WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
                "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen",
                "nineteen"]
TENS = ["", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]


def number_word(n):
    if n < 20:
        return NUMBER_WORDS[n]
    t, u = divmod(n, 10)
    return TENS[t] + ("" if u == 0 else "-" + NUMBER_WORDS[u])


def pairs_from(text):
    out = []
    for item in text.replace("\n", "").split("|"):
        item = item.strip()
        if not item:
            continue
        words = item.split(" ")
        # The last word is the output unless the list uses multi-word names; those are split
        # at the known boundary below by the caller.
        out.append(words)
    return out


def capitals():
    # Country names may have several words; capitals may too. Split using a set of multi-word
    # capitals, else the last word is the capital.
    multi = ["Addis Ababa", "Kuwait City", "New Delhi", "Phnom Penh", "Kuala Lumpur", "Mexico City",
             "Guatemala City", "San Jose", "Panama City", "La Paz", "Buenos Aires", "Bandar Seri Begawan",
             "Port Moresby", "Santo Domingo", "San Salvador", "Port of Spain", "Andorra la Vella",
             "San Marino", "Vatican City"]
    out = []
    for item in CAPITALS.replace("\n", "").split("|"):
        item = item.strip()
        cap = next((m for m in multi if item.endswith(" " + m)), None)
        if cap is None:
            country, cap = item.rsplit(" ", 1)
        else:
            country = item[: -len(cap) - 1]
        out.append((country, cap))
    return out


def plural(w):
    if w in IRREGULAR_PLURALS:
        return IRREGULAR_PLURALS[w]
    if w.endswith(("s", "x", "z", "ch", "sh")):
        return w + "es"
    if w.endswith("y") and w[-2] not in "aeiou":
        return w[:-1] + "ies"
    return w + "s"


def past(w):
    if w.endswith("e"):
        return w + "d"
    if w.endswith("y") and w[-2] not in "aeiou":
        return w[:-1] + "ied"
    if w in ("stop", "plan", "shop", "hop"):
        return w + w[-1] + "ed"
    if w == "travel":
        return "traveled"
    return w + "ed"


def dedup(pairs):
    seen, out = set(), []
    for a, b in pairs:
        if a in seen:
            continue
        seen.add(a)
        out.append((a, b))
    return out


def main():
    tasks = {}
    tasks["antonym"] = dedup([tuple(p) for p in pairs_from(ANTONYMS)])
    tasks["country-capital"] = dedup(capitals())
    tasks["english-french"] = dedup([tuple(p) for p in pairs_from(FRENCH)])
    irr = [tuple(p) for p in pairs_from(VERBS_IRREGULAR)]
    tasks["present-past"] = dedup(irr + [(v, past(v)) for v in VERBS_REGULAR.split()])
    nouns = NOUNS + list(IRREGULAR_PLURALS)
    tasks["singular-plural"] = dedup([(w, plural(w)) for w in nouns])
    tasks["uppercase"] = dedup([(w, w.upper()) for w in WORDS_UPPER])
    tasks["first-letter"] = dedup([(w, w[0]) for w in WORDS_UPPER])
    # Number words 0..98 (the next number spelled out) plus some digit strings.
    tasks["next-number"] = [(number_word(n), number_word(n + 1)) for n in range(0, 99)] + \
        [(str(n), str(n + 1)) for n in range(100, 160, 3)]
    os.makedirs(OUT, exist_ok=True)
    for name, pairs in tasks.items():
        for a, b in pairs:
            assert len(a.split(" ")) <= 5 and a and b, (name, a, b)
        path = os.path.join(OUT, name + ".jsonl")
        with open(path, "w", encoding="utf-8") as f:
            for a, b in pairs:
                f.write(json.dumps({"input": a, "output": b}, ensure_ascii=False) + "\n")
        print(f"{name}: {len(pairs)} pairs -> {os.path.relpath(path, ROOT)}")


if __name__ == "__main__":
    main()
